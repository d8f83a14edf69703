// Package postgres is Phoenix's storage. Store implements the domain's services (the
// interfaces of pkg/referral) for the Admin Gateway: each exported method runs in one
// transaction (transact, the package's one transaction helper) that locks, loads, lets the
// domain decide and writes. Source reads what the Query Gateway's read models are built from.
// SQL is written by hand over sqlx and lib/pq, next to its method; each table has one row type
// and one column list.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/phoenix-referral/phoenix/migrations"
	"github.com/phoenix-referral/phoenix/pkg/outbox"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// Store is the PostgreSQL-backed implementation of the domain's services.
type Store struct {
	db      *sqlx.DB
	changed chan struct{}
	// Now returns the current time; tests may replace it. Times are truncated to microseconds,
	// the precision PostgreSQL stores.
	Now func() time.Time
	// OutboxRetention is how long outbound events are kept (PHOENIX_OUTBOX_RETENTION): a replay
	// from before it is refused.
	OutboxRetention time.Duration
	// ImpressionTTL is how old an impression apply-code still links (PHOENIX_IMPRESSION_TTL).
	ImpressionTTL time.Duration
	impressions   impressionQueue
	// SignalRetention is how long risk signals count (PHOENIX_SIGNAL_RETENTION, §12): a device
	// seen longer ago matches nothing, and PruneSignals deletes such signals.
	SignalRetention time.Duration
}

// Store implements every service of the domain.
var (
	_ referral.CampaignService       = (*Store)(nil)
	_ referral.CodeService           = (*Store)(nil)
	_ referral.ReferralService       = (*Store)(nil)
	_ referral.AttemptService        = (*Store)(nil)
	_ referral.AffiliateService      = (*Store)(nil)
	_ referral.HierarchyService      = (*Store)(nil)
	_ referral.TierService           = (*Store)(nil)
	_ referral.CommissionRuleService = (*Store)(nil)
	_ referral.EventService          = (*Store)(nil)
	_ referral.LedgerService         = (*Store)(nil)
	_ referral.ImpressionService     = (*Store)(nil)
	_ referral.RiskService           = (*Store)(nil)
)

// NewStore returns a Store over db.
func NewStore(db *sqlx.DB) *Store {
	return &Store{db: db, Now: time.Now, changed: make(chan struct{}, 1), SignalRetention: referral.DefaultSignalRetention,
		ImpressionTTL: referral.DefaultImpressionTTL, OutboxRetention: outbox.DefaultRetention}
}

// DB returns the underlying connection pool.
func (s *Store) DB() *sqlx.DB { return s.db }

func (s *Store) now() time.Time { return s.Now().UTC().Truncate(time.Microsecond) }

// Open connects to dsn with application_name set to app, and checks the connection.
func Open(ctx context.Context, dsn, app string, maxConns int) (*sqlx.DB, error) {
	dsn, err := WithApplicationName(dsn, app)
	if err != nil {
		return nil, err
	}
	db, err := sqlx.Open("postgres", dsn)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	return db, nil
}

// WithApplicationName sets application_name on a postgres:// URL or a key=value DSN, and turns on
// lib/pq's binary_parameters, which sends a parameterised statement in one round trip instead
// of two (it sends []byte arguments as binary data, so JSON goes to PostgreSQL as a string).
func WithApplicationName(dsn, app string) (string, error) {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		q.Set("application_name", app)
		if q.Get("binary_parameters") == "" {
			q.Set("binary_parameters", "yes")
		}
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	if dsn == "" {
		return "", errors.New("empty database URL")
	}
	if !strings.Contains(dsn, "binary_parameters=") {
		dsn += " binary_parameters=yes"
	}
	return dsn + " application_name=" + app, nil
}

// Migrate applies every pending migration. A PostgreSQL advisory lock makes concurrent callers
// (replicas starting at once) wait for each other instead of racing.
func Migrate(ctx context.Context, db *sql.DB, log *slog.Logger) error {
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, r := range results {
		log.Info("migration_applied", "version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
	}
	return nil
}

// MigrateTo applies the migrations up to and including version (for tests of a migration over
// data written under an older schema).
func MigrateTo(ctx context.Context, db *sql.DB, version int64) error {
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.UpTo(ctx, version); err != nil {
		return fmt.Errorf("migrate to %d: %w", version, err)
	}
	return nil
}

// DatabaseID returns the random identity this database was given by its first migration.
func DatabaseID(ctx context.Context, db sqlx.QueryerContext) (string, error) {
	var id string
	if err := sqlx.GetContext(ctx, db, &id, `SELECT database_id::text FROM phoenix_meta`); err != nil {
		return "", fmt.Errorf("database id: %w", err)
	}
	return id, nil
}

// Postgres error codes the store translates.
const (
	pqUniqueViolation     = "23505"
	pqForeignKeyViolation = "23503"
	pqCheckViolation      = "23514"
	pqSerialization       = "40001"
	pqDeadlock            = "40P01"
)

// pqCode returns the SQLSTATE of err, or "".
func pqCode(err error) string {
	var pe *pq.Error
	if errors.As(err, &pe) {
		return string(pe.Code)
	}
	return ""
}

// pqConstraint returns the constraint a PostgreSQL error names, or "".
func pqConstraint(err error) string {
	var pe *pq.Error
	if errors.As(err, &pe) {
		return pe.Constraint
	}
	return ""
}

// isNoRows reports whether err is sql.ErrNoRows.
func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// translate maps a unique violation on a known constraint to a domain error; any other error is
// returned wrapped with op.
func translate(op string, err error) error {
	if err == nil {
		return nil
	}
	var de *referral.Error
	if errors.As(err, &de) {
		return err
	}
	if pqCode(err) == pqUniqueViolation {
		switch pqConstraint(err) {
		case "referral_codes_code":
			return referral.Errorf(referral.ECodeTaken, "code is already taken")
		case "affiliates_user":
			return referral.Errorf(referral.EAffiliateExists, "user is already an affiliate")
		case "referrals_referee":
			return referral.Errorf(referral.EAlreadyReferred, "player has already been referred")
		}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// converter is a database row type that converts itself to its domain type.
type converter[T any] interface {
	domain() (T, error)
}

// domainAll converts rows to their domain values.
func domainAll[R converter[T], T any](rows []R) ([]T, error) {
	out := make([]T, 0, len(rows))
	for _, r := range rows {
		v, err := r.domain()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// getRow reads the one row query selects and converts it; no row is NOT_FOUND naming what.
func getRow[R converter[T], T any](ctx context.Context, q sqlx.QueryerContext, what, query string, args ...any) (T, error) {
	var row R
	if err := sqlx.GetContext(ctx, q, &row, query, args...); err != nil {
		var zero T
		if isNoRows(err) {
			return zero, referral.NotFound(what)
		}
		return zero, fmt.Errorf("get %s: %w", what, err)
	}
	return row.domain()
}
