package postgres_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// TestMigrateFilterLiterals writes filters under the old reading (an object with a key outside
// the operators, or an empty object, was a literal) and checks that the migration rewrites them
// as {"eq": …}, leaves operator objects and other literals alone, and that every result parses
// under the operator-object rule with the same meaning.
func TestMigrateFilterLiterals(t *testing.T) {
	ctx := context.Background()
	db, err := sqlx.Open("postgres", pgtest.EmptyDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := postgres.MigrateTo(ctx, db.DB, 2); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ old, want string }{
		{`{"meta": {"country": "DE"}}`, `{"meta": {"eq": {"country": "DE"}}}`},
		{`{"amount": {"gte": 5, "gtee": 6}}`, `{"amount": {"eq": {"gte": 5, "gtee": 6}}}`},
		{`{"x": {}}`, `{"x": {"eq": {}}}`},
		{`{"amount": {"gte": 1000}, "currency": {"in": ["EUR"]}, "vip": true}`, `{"amount": {"gte": 1000}, "currency": {"in": ["EUR"]}, "vip": true}`},
		{`{"tags": ["a", {"b": 1}]}`, `{"tags": ["a", {"b": 1}]}`},
		{`{}`, `{}`},
	}
	ids := make([]uuid.UUID, len(cases))
	for i, c := range cases {
		ids[i] = uuid.New()
		if _, err := db.ExecContext(ctx, `
			INSERT INTO campaigns (id, tenant_id, name, qualifying_event, qualifying_filter, referrer_rewards, referee_rewards, active, created_at, updated_at)
			VALUES ($1, 'mig', 'c', 'deposit.completed', $2::jsonb, '{"wallet": []}', '{"wallet": []}', true, now(), now())`, ids[i], c.old); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `
			INSERT INTO commission_rules (id, tenant_id, name, event_type, event_filter, commission_field, use_tier_rate, currency_id, active, created_at, updated_at)
			VALUES ($1, 'mig', 'r', 'deposit.completed', $2::jsonb, 'amount', true, 'EUR', true, now(), now())`, ids[i], c.old); err != nil {
			t.Fatal(err)
		}
	}
	var nullID = uuid.New()
	if _, err := db.ExecContext(ctx, `
		INSERT INTO campaigns (id, tenant_id, name, qualifying_event, qualifying_filter, referrer_rewards, referee_rewards, active, created_at, updated_at)
		VALUES ($1, 'mig', 'c', 'deposit.completed', NULL, '{"wallet": []}', '{"wallet": []}', true, now(), now())`, nullID); err != nil {
		t.Fatal(err)
	}
	if err := postgres.MigrateTo(ctx, db.DB, 3); err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		for _, q := range []string{
			`SELECT qualifying_filter::text FROM campaigns WHERE id = $1`,
			`SELECT event_filter::text FROM commission_rules WHERE id = $1`,
		} {
			var got string
			if err := db.GetContext(ctx, &got, q, ids[i]); err != nil {
				t.Fatal(err)
			}
			if !jsonEqual(t, got, c.want) {
				t.Errorf("%s: got %s, want %s", c.old, got, c.want)
			}
			if _, err := referral.ParseFilter("qualifying_filter", []byte(got)); err != nil {
				t.Errorf("%s: migrated filter %s does not parse: %v", c.old, got, err)
			}
		}
	}
	var filter *string
	if err := db.GetContext(ctx, &filter, `SELECT qualifying_filter::text FROM campaigns WHERE id = $1`, nullID); err != nil {
		t.Fatal(err)
	}
	if filter != nil {
		t.Errorf("a null filter became %s", *filter)
	}
	var fn int
	if err := db.GetContext(ctx, &fn, `SELECT count(*) FROM pg_proc WHERE proname = 'phoenix_filter_literals_as_eq'`); err != nil || fn != 0 {
		t.Errorf("the migration's helper function is left behind (%d, %v)", fn, err)
	}
}

func jsonEqual(t *testing.T, a, b string) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal([]byte(a), &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Fatal(err)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}
