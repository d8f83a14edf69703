// Package pgtest gives tests a real, freshly migrated PostgreSQL database of their own.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq" // the postgres driver

	"github.com/phoenix-referral/phoenix/pkg/postgres"
)

// AdminURL returns the server URL tests create their databases from
// (PHOENIX_TEST_DATABASE_URL, default the local trust-auth server).
func AdminURL() string {
	if u := os.Getenv("PHOENIX_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

var (
	mu      sync.Mutex
	created []string
)

// NewDatabase creates an empty database with a random name, migrated to the latest schema, and
// returns its URL. Call Cleanup (from TestMain) to drop every database a package created.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	u := EmptyDatabase(tb)
	db, err := sqlx.Open("postgres", u)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	defer db.Close()
	if err := postgres.Migrate(context.Background(), db.DB, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	return u
}

// EmptyDatabase creates a database with a random name and no schema (for migration tests) and
// returns its URL; Main drops it.
func EmptyDatabase(tb testing.TB) string {
	tb.Helper()
	admin, err := sqlx.Open("postgres", AdminURL())
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	defer admin.Close()
	var b [6]byte
	rand.Read(b[:])
	name := "phoenix_test_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(context.Background(), "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("pgtest: create database (is PostgreSQL running at %s?): %v", AdminURL(), err)
	}
	mu.Lock()
	created = append(created, name)
	mu.Unlock()
	u, err := url.Parse(AdminURL())
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// MustOpenDB creates a fresh database (as NewDatabase) and returns a pool on it; when the test
// ends the pool is closed and the database dropped. Use it where a test must own its database:
// it watches pg_stat_activity, changes the schema, or counts rows across tenants.
func MustOpenDB(tb testing.TB) *sqlx.DB {
	tb.Helper()
	u := NewDatabase(tb)
	db, err := postgres.Open(context.Background(), u, "pgtest", 16)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(func() {
		db.Close()
		drop(databaseName(u))
	})
	return db
}

// databaseName is the name of the database a URL from NewDatabase points at.
func databaseName(dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		return ""
	}
	return path.Base(u.Path)
}

// drop drops a database created by NewDatabase, reporting a failure on stderr.
func drop(name string) {
	admin, err := sqlx.Open("postgres", AdminURL())
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: drop %s: %v\n", name, err)
		return
	}
	defer admin.Close()
	if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: drop %s: %v\n", name, err)
	}
}

var (
	shared     *sqlx.DB
	sharedURL  string
	sharedOnce sync.Once
)

// DB returns the package's shared test database (created and migrated on first use). Tests keep
// out of each other's way by using their own tenant ids (see Tenant).
func DB(tb testing.TB) *sqlx.DB {
	tb.Helper()
	sharedOnce.Do(func() {
		sharedURL = NewDatabase(tb)
		db, err := postgres.Open(context.Background(), sharedURL, "pgtest", 32)
		if err != nil {
			tb.Fatalf("pgtest: %v", err)
		}
		shared = db
	})
	if shared == nil {
		tb.Fatal("pgtest: shared database unavailable")
	}
	return shared
}

// URL returns the shared test database's URL, creating it if needed.
func URL(tb testing.TB) string {
	tb.Helper()
	DB(tb)
	return sharedURL
}

// Tenant returns a tenant id unique to this call, so tests sharing a database never see each
// other's rows.
func Tenant(tb testing.TB) string {
	var b [5]byte
	rand.Read(b[:])
	return "t-" + hex.EncodeToString(b[:])
}

// Main runs a package's tests, then the package's own clean-ups after (e.g.
// cachetest.StopClusters), and then drops every database they created. Use it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M, after ...func()) {
	code := m.Run()
	for _, f := range after {
		f()
	}
	if shared != nil {
		shared.Close()
	}
	for _, name := range created {
		drop(name)
	}
	os.Exit(code)
}

// WaitForLock waits until a backend of db's database waits for a lock while it runs a statement
// whose text contains query, so that a test knows a concurrent call is blocked where it means it
// to be (instead of sleeping and assuming so). It fails tb after 10 s.
func WaitForLock(tb testing.TB, db *sqlx.DB, query string) {
	tb.Helper()
	const q = `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND wait_event_type = 'Lock' AND strpos(query, $1) > 0`
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		var waiting int
		if err := db.Get(&waiting, q, query); err != nil {
			tb.Fatalf("pgtest: %v", err)
		}
		if waiting > 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("pgtest: no statement containing %q waited for a lock within 10 s", query)
		}
	}
}
