package postgres_test

import (
	"context"
	"testing"

	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
)

// TestChangeLogTriggers checks that writes to projected tables record their changes in the
// writing transaction — row by row, and for affiliates once per statement for every row — and
// that the ledgers refuse updates.
func TestChangeLogTriggers(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	tenant := pgtest.Tenant(t)
	tx := db.MustBeginTx(ctx, nil)
	defer tx.Rollback()
	var xid string
	tx.MustExecContext(ctx, `
		INSERT INTO campaigns (id, tenant_id, name, qualifying_event, referrer_rewards, referee_rewards, active, created_at, updated_at)
		VALUES (gen_random_uuid(), $1, 'c', 'deposit.completed', '{}', '{}', true, now(), now())`, tenant)
	tx.MustExecContext(ctx, `
		INSERT INTO referral_codes (id, tenant_id, code, owner_user_id, active, source, created_at, updated_at)
		SELECT gen_random_uuid(), $1, 'AFF' || i, 'u' || i, true, 'affiliate', now(), now() FROM generate_series(1, 3) i`, tenant)
	tx.MustExecContext(ctx, `
		INSERT INTO affiliates (id, tenant_id, user_id, affiliate_code, code_id, status, created_at, updated_at)
		SELECT gen_random_uuid(), tenant_id, owner_user_id, code, id, 'active', now(), now()
		FROM referral_codes WHERE tenant_id = $1`, tenant)
	tx.MustExecContext(ctx, `UPDATE affiliates SET status = 'suspended' WHERE tenant_id = $1`, tenant)
	if err := tx.GetContext(ctx, &xid, `SELECT pg_current_xact_id()::text`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var got []struct {
		Entity string `db:"entity"`
		Op     string `db:"op"`
		N      int    `db:"n"`
	}
	err := db.SelectContext(ctx, &got, `
		SELECT entity, op, count(*) AS n FROM changes WHERE tenant_id = $1 AND xid::text = $2
		GROUP BY entity, op ORDER BY entity, op`, tenant, xid)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"affiliate insert 3", "affiliate update 3", "campaign insert 1", "code insert 3"}
	if len(got) != len(want) {
		t.Fatalf("changes = %+v, want %v", got, want)
	}
	for i, g := range got {
		if s := g.Entity + " " + g.Op + " " + itoa(g.N); s != want[i] {
			t.Errorf("change %d = %q, want %q", i, s, want[i])
		}
	}
	if _, err := db.ExecContext(ctx, `UPDATE rewards SET amount = amount + 1`); err == nil {
		t.Fatal("the reward ledger accepted an UPDATE")
	}
	if _, err := db.ExecContext(ctx, `DELETE FROM commissions`); err == nil {
		t.Fatal("the commission ledger accepted a DELETE")
	}
}

func itoa(n int) string {
	b := []byte{}
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
		if n == 0 {
			return string(b)
		}
	}
}
