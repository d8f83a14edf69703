package webhook_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/postgres"
)

// privatePostgres is a PostgreSQL server of the test's own (initdb in a temporary directory),
// so that it can be restarted without disturbing anyone else's database.
type privatePostgres struct {
	t       *testing.T
	dir     string
	port    int
	asUser  []string // runuser prefix when running as root (PostgreSQL refuses root)
	stopped bool
}

func newPrivatePostgres(t *testing.T) *privatePostgres {
	t.Helper()
	if _, err := exec.LookPath("initdb"); err != nil {
		t.Skip("initdb not installed")
	}
	dir, err := os.MkdirTemp("/tmp", "phoenix-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p := &privatePostgres{t: t, dir: dir}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skip("running as root without a postgres user")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		p.asUser = []string{"runuser", "-u", "postgres", "--"}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	p.run("initdb", "-D", filepath.Join(dir, "data"), "-U", "postgres", "-A", "trust", "--no-sync")
	p.start()
	t.Cleanup(func() {
		if !p.stopped {
			p.stop()
		}
		os.RemoveAll(dir)
	})
	return p
}

func (p *privatePostgres) run(args ...string) {
	p.t.Helper()
	args = append(append([]string{}, p.asUser...), args...)
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		p.t.Fatalf("%v: %v\n%s", args, err, out)
	}
}

func (p *privatePostgres) start() {
	p.run("pg_ctl", "-D", filepath.Join(p.dir, "data"), "-l", filepath.Join(p.dir, "log"), "-w", "-o",
		fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", p.port, p.dir), "start")
	p.stopped = false
}

func (p *privatePostgres) stop() {
	p.run("pg_ctl", "-D", filepath.Join(p.dir, "data"), "-m", "fast", "-w", "stop")
	p.stopped = true
}

func (p *privatePostgres) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.port, db)
}

// TestPostgresRestartLosesNothing: PostgreSQL stops (fast shutdown, every connection cut) while
// deliveries are in flight and events keep coming, then starts again: every event committed
// before or after is delivered, none is lost.
func TestPostgresRestartLosesNothing(t *testing.T) {
	pg := newPrivatePostgres(t)
	ctx := context.Background()
	admin, err := postgres.Open(ctx, pg.url("postgres"), "restart-test", 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(`CREATE DATABASE phoenix`); err != nil {
		t.Fatal(err)
	}
	admin.Close()
	db, err := postgres.Open(ctx, pg.url("phoenix"), "restart-test", 16)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := postgres.Migrate(ctx, db.DB, quiet()); err != nil {
		t.Fatal(err)
	}
	rcv := newReceiver(t, func(int64, string) int { return http.StatusOK })
	rcv.hold = func(string) { time.Sleep(20 * time.Millisecond) }
	w := newWorld(t, db, rcv)
	stop := start(w.store, w, fastConfig())
	defer stop()
	w.affiliates(t, 40, "before")
	waitFor(t, 10*time.Second, "deliveries under way", func() bool { return rcv.n.Load() > 5 })
	pg.stop()
	time.Sleep(500 * time.Millisecond) // claims and records fail meanwhile
	pg.start()
	w.affiliates(t, 20, "after")
	checkAllDelivered(t, w, rcv)
	if ids := w.eventIDs(t); len(ids) != 60 {
		t.Fatalf("the outbox holds %d events, 60 were committed", len(ids))
	}
}
