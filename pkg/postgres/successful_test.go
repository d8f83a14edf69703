package postgres_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// TestSuccessfulAgreesWithDomain: phoenix_successful, the SQL side of the rule (migration
// 00004), answers as referral.Successful for every status the referrals table admits (read from
// its CHECK constraint, which must list exactly referral.ReferralStatuses) and for strings that
// are no status.
func TestSuccessfulAgreesWithDomain(t *testing.T) {
	db := pgtest.DB(t)
	var def string
	const q = `SELECT pg_get_constraintdef(oid) FROM pg_constraint
		WHERE conrelid = 'referrals'::regclass AND conname = 'referrals_status_check'`
	if err := db.Get(&def, q); err != nil {
		t.Fatal(err)
	}
	var admitted []string
	for _, m := range regexp.MustCompile(`'([^']*)'::text`).FindAllStringSubmatch(def, -1) {
		admitted = append(admitted, m[1])
	}
	if !slices.Equal(slices.Sorted(slices.Values(admitted)), slices.Sorted(slices.Values(referral.ReferralStatuses))) {
		t.Fatalf("the schema admits %v (%s), the domain knows %v", admitted, def, referral.ReferralStatuses)
	}
	for _, s := range append(admitted, "", "CONVERTED", "unknown") {
		var got bool
		if err := db.Get(&got, `SELECT phoenix_successful($1)`, s); err != nil {
			t.Fatal(err)
		}
		if want := referral.Successful(s); got != want {
			t.Errorf("phoenix_successful(%q) = %v, referral.Successful = %v", s, got, want)
		}
	}
}

// TestSuccessfulIsInlined: the planner inlines phoenix_successful, so a query asking it plans as
// the expression written out would, index conditions included.
func TestSuccessfulIsInlined(t *testing.T) {
	db := pgtest.DB(t)
	var lines []string
	const q = `EXPLAIN (VERBOSE, COSTS OFF) SELECT count(*) FROM referrals
		WHERE tenant_id = 't' AND referrer_id = 'u' AND phoenix_successful(status)`
	if err := db.Select(&lines, q); err != nil {
		t.Fatal(err)
	}
	plan := strings.Join(lines, "\n")
	if strings.Contains(plan, "phoenix_successful") || !strings.Contains(plan, "'{converted,verified}'") {
		t.Fatalf("phoenix_successful was not inlined:\n%s", plan)
	}
}
