package postgres_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"sync/atomic"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// countingConnector opens lib/pq connections that count every statement they send: each
// query, exec, BEGIN and COMMIT is one round trip (binary_parameters sends a parameterised
// statement in one).
type countingConnector struct {
	dsn string
	n   *atomic.Int64
}

func (c countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := pq.Driver{}.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: conn, n: c.n}, nil
}

func (c countingConnector) Driver() driver.Driver { return pq.Driver{} }

// countingConn forwards to a lib/pq connection, counting statements.
type countingConn struct {
	driver.Conn
	n *atomic.Int64
}

func (c *countingConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	c.n.Add(1)
	return c.Conn.(driver.ExecerContext).ExecContext(ctx, q, args)
}

func (c *countingConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	c.n.Add(1)
	return c.Conn.(driver.QueryerContext).QueryContext(ctx, q, args)
}

func (c *countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	c.n.Add(1)
	tx, err := c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return countingTx{Tx: tx, n: c.n}, nil
}

// countingTx counts COMMIT and ROLLBACK.
type countingTx struct {
	driver.Tx
	n *atomic.Int64
}

func (t countingTx) Commit() error   { t.n.Add(1); return t.Tx.Commit() }
func (t countingTx) Rollback() error { t.n.Add(1); return t.Tx.Rollback() }

// countingStore returns a store on a fresh database whose every statement adds to the
// returned counter.
func countingStore(t *testing.T) (*postgres.Store, *atomic.Int64) {
	t.Helper()
	dsn, err := postgres.WithApplicationName(pgtest.NewDatabase(t), "pgtest")
	if err != nil {
		t.Fatal(err)
	}
	n := new(atomic.Int64)
	db := sqlx.NewDb(sql.OpenDB(countingConnector{dsn: dsn, n: n}), "postgres")
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return postgres.NewStore(db), n
}

// TestApplyCodeStatements counts the round trips (statements, BEGIN and COMMIT included) of
// one apply-code: of a player's code and of an admin code in a tenant where nothing listens
// for referral.applied, and of a player's code where a campaign does. Where nothing listens the
// event loads nothing: BEGIN, user lock, code, pair lock, facts, insert, the referral.created
// outbox row, event, COMMIT.
func TestApplyCodeStatements(t *testing.T) {
	ctx := context.Background()
	s, n := countingStore(t)
	const tenant = "t1"
	if _, err := s.CreatePlayerCode(ctx, tenant, "alice", "ALICE1", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateAdminCode(ctx, referral.Code{TenantID: tenant, Code: "HOUSE", Active: true}); err != nil {
		t.Fatal(err)
	}
	count := func(referee, code string) int64 {
		t.Helper()
		before := n.Load()
		if _, _, err := s.ApplyCode(ctx, tenant, referee, code, nil, nil); err != nil {
			t.Fatal(err)
		}
		return n.Load() - before
	}
	player, admin := count("bob", "ALICE1"), count("carol", "HOUSE")
	if _, err := s.CreateCampaign(ctx, referral.Campaign{TenantID: tenant, Name: "Instant",
		QualifyingEvent: referral.ReferralAppliedEvent, Active: true,
		RefereeRewards: []referral.Wallet{{CurrencyID: "coins", Amount: 5}}}); err != nil {
		t.Fatal(err)
	}
	listened := count("dave", "ALICE1")
	t.Logf("round trips per apply-code: player code %d, admin code %d, player code with a referral.applied campaign %d",
		player, admin, listened)
	if player > 9 || admin > 8 || listened > 18 {
		t.Errorf("round trips: player code %d (want ≤ 9), admin code %d (≤ 8), listened %d (≤ 18)", player, admin, listened)
	}
}
