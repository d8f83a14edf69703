package postgres_test

import (
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/lib/pq"

	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
)

// TestPayoutRowInOneLivePayout: the schema itself keeps a commission row in at most one live
// payout (the unique index payout_rows_live over (commission_id, live)), whatever the code above
// it does: a second live membership is refused, released ones (live NULL, a failed payout) do
// not count, and live can only be true or NULL.
func TestPayoutRowInOneLivePayout(t *testing.T) {
	db := pgtest.DB(t)
	row, p1, p2, p3 := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	if _, err := db.Exec(`INSERT INTO payout_rows (payout_id, commission_id) VALUES ($1, $2)`, p1, row); err != nil {
		t.Fatal(err)
	}
	_, err := db.Exec(`INSERT INTO payout_rows (payout_id, commission_id) VALUES ($1, $2)`, p2, row)
	if code := pgCode(err); code != "23505" {
		t.Fatalf("a second live membership: %v, want a unique violation", err)
	}
	if _, err := db.Exec(`UPDATE payout_rows SET live = NULL WHERE payout_id = $1`, p1); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO payout_rows (payout_id, commission_id) VALUES ($1, $2)`, p3, row); err != nil {
		t.Fatalf("after the first payout released the row: %v", err)
	}
	if _, err := db.Exec(`INSERT INTO payout_rows (payout_id, commission_id, live) VALUES ($1, $2, false)`, uuid.New(), row); pgCode(err) != "23514" {
		t.Fatalf("live = false: %v, want a check violation", err)
	}
}

// pgCode is the SQLSTATE of a PostgreSQL error, "" for any other.
func pgCode(err error) string {
	var pe *pq.Error
	if errors.As(err, &pe) {
		return string(pe.Code)
	}
	return ""
}
