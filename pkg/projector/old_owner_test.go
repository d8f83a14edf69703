package projector

import (
	"context"
	"strings"
	"testing"

	"github.com/phoenix-referral/phoenix/pkg/cache"
	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// TestOwnerMoveAfterWipe: a code moved to another owner leaves its previous owner's list,
// however the read models were rebuilt before the move (a wiped Redis remembers no owner): the
// change itself names the previous owner.
func TestOwnerMoveAfterWipe(t *testing.T) {
	p, rdb := qryProjector(t)
	ctx := context.Background()
	s := postgres.NewStore(p.db)
	alice, bob := "alice", "bob"
	c, err := s.CreateAdminCode(ctx, referral.Code{TenantID: "t1", Code: "MOVEME", OwnerUserID: &alice, Active: true})
	if err != nil {
		t.Fatal(err)
	}
	qryRound(t, p)
	codes := func(user string) string {
		t.Helper()
		v, err := rdb.HGet(ctx, cache.UserKey("t1", user), cache.SectionCodes).Result()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if !strings.Contains(codes("alice"), "MOVEME") {
		t.Fatalf("alice's codes before the move: %s", codes("alice"))
	}
	if err := rdb.FlushDB(ctx).Err(); err != nil { // a wipe, and a rebuild
		t.Fatal(err)
	}
	qryRound(t, p)

	c.OwnerUserID = &bob
	if _, err := s.ReplaceCode(ctx, c); err != nil {
		t.Fatal(err)
	}
	qryRound(t, p)
	if got := codes("alice"); strings.Contains(got, "MOVEME") {
		t.Errorf("alice still lists the code she no longer owns: %s", got)
	}
	if got := codes("bob"); !strings.Contains(got, "MOVEME") {
		t.Errorf("bob does not list his new code: %s", got)
	}
}
