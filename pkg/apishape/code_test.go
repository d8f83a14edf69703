package apishape_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// TestCodeDomain: a code stored in the read model converts back to the domain code it came from
// (the apply-code checks read it), but for the fields the shape does not carry.
func TestCodeDomain(t *testing.T) {
	owner, campaign, limit := "u_1", uuid.New(), 100
	expires := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	c := referral.Code{ID: uuid.New(), TenantID: "t1", Code: "ALICE", OwnerUserID: &owner, CampaignID: &campaign,
		UsageLimit: &limit, Uses: 3, Active: true, ExpiresAt: &expires,
		CreatedAt: time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC), UpdatedAt: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC),
		Source: referral.CodeSourcePlayer, Generated: true}
	b, err := json.Marshal(apishape.NewCode(c))
	if err != nil {
		t.Fatal(err)
	}
	var back apishape.Code
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	want := c
	want.Source, want.Generated = "", false
	if got := back.Domain(); !reflect.DeepEqual(got, want) {
		t.Errorf("Domain() = %+v, want %+v", got, want)
	}
	var none apishape.Code
	if got := none.Domain(); got.ExpiresAt != nil || got.OwnerUserID != nil {
		t.Errorf("empty code: %+v", got)
	}
}
