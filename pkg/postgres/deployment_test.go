package postgres_test

import (
	"context"
	"regexp"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
)

// TestDefaultDeployment: a database always gets the same default deployment name, also before
// it is migrated, and two databases of one cluster get different ones.
func TestDefaultDeployment(t *testing.T) {
	ctx := context.Background()
	name := func(u string) string {
		t.Helper()
		db, err := sqlx.Open("postgres", u)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		n, err := postgres.DefaultDeployment(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	migrated, empty := pgtest.URL(t), pgtest.EmptyDatabase(t)
	a, b := name(migrated), name(empty)
	if again := name(migrated); again != a {
		t.Errorf("the same database got %q, then %q", a, again)
	}
	if a == b {
		t.Errorf("two databases share the default deployment %q", a)
	}
	for _, n := range []string{a, b} {
		if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(n) {
			t.Errorf("default deployment %q is not 16 hex digits", n)
		}
	}
}
