package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
)

// qryScriptBins copies the gateways into a directory of the test's own: the scripts find
// gateways by executable path, so they see only this test's processes.
func qryScriptBins(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"admin-gateway", "query-gateway"} {
		qryCopyFile(t, filepath.Join(qryBinDir, name), filepath.Join(dir, name))
	}
	t.Cleanup(func() {
		// Whatever a failing script left behind.
		for _, pid := range qryProcsIn(t, dir) {
			t.Errorf("pid %d still runs from %s; killing it", pid, dir)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return dir
}

// qryCopyFile copies an executable to a new file at dst (a new inode even when dst exists,
// as a rebuild makes it).
func qryCopyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

// qryProcsIn lists the processes whose executable is in dir (also a deleted one).
func qryProcsIn(t *testing.T, dir string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err == nil && filepath.Dir(strings.TrimSuffix(exe, " (deleted)")) == dir {
			pids = append(pids, pid)
		}
	}
	return pids
}

// qryScriptEnv is the test's environment without PHOENIX_ settings and NO_COLOR, plus env.
func qryScriptEnv(env ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PHOENIX_") && !strings.HasPrefix(kv, "NO_COLOR=") {
			out = append(out, kv)
		}
	}
	return append(out, env...)
}

// qryScript runs a command from the repository root (bounded to two minutes) and returns its
// stdout, stderr and exit status.
func qryScript(t *testing.T, env []string, name string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = ".."
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %v did not finish in time:\n%s\n%s", name, args, stdout.String(), stderr.String())
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

// TestRunAndStopScripts runs `make run`'s script and then `make stop`'s against a database,
// Redis database, addresses and binaries of the test's own: the seed flow works, headings are
// bold only on a terminal without NO_COLOR, a second run replaces the first's gateways, and stop
// ends every gateway with exit status 0 and says so.
func TestRunAndStopScripts(t *testing.T) {
	bins := qryScriptBins(t)
	runDir := t.TempDir()
	dbURL := pgtest.NewDatabase(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	redisDB := qryRedisIndex()
	env := qryScriptEnv("BIN="+bins, "RUN_DIR="+runDir, "ADMIN_ADDR="+qryFreeAddr(t), "QUERY_ADDR="+qryFreeAddr(t),
		"DB_NAME="+strings.TrimPrefix(u.Path, "/"), "PHOENIX_DATABASE_URL="+dbURL,
		fmt.Sprintf("PHOENIX_REDIS_URL=redis://127.0.0.1:6379/%d", redisDB), "TENANT=scripts",
		"PHOENIX_SHUTDOWN_TIMEOUT=5s", "STOP_TIMEOUT=10")
	t.Cleanup(func() { qryScript(t, env, "bash", "scripts/stop.sh") })
	const bold = "\x1b[1m== "

	// Output to a pipe: no escape sequences.
	stdout, stderr, code := qryScript(t, env, "bash", "scripts/run.sh")
	if code != 0 {
		t.Fatalf("run.sh exited %d:\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"Phoenix Referral is up.", "export ALICE_TOKEN=ey", "== Alice reads her stats", `"total_referrals":1`,
		`/console/   (Development sign-in, tenant "scripts"`} {
		if !strings.Contains(stdout, want) {
			t.Errorf("run.sh output lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "\x1b") {
		t.Errorf("run.sh wrote escape sequences into a pipe:\n%q", qryTail(stdout, 400))
	}
	first := qryProcsIn(t, bins)
	if len(first) != 2 {
		t.Fatalf("%d gateways running after run.sh, want 2", len(first))
	}

	// On a terminal (script(1) gives it one): bold headings, unless NO_COLOR is set.
	if _, err := exec.LookPath("script"); err != nil {
		t.Log("script(1) not installed: terminal output not checked")
	} else {
		for _, noColor := range []bool{false, true} {
			e := env
			if noColor {
				e = append(slices.Clip(env), "NO_COLOR=1")
			}
			stdout, stderr, code := qryScript(t, e, "script", "-qec", "bash scripts/run.sh", "/dev/null")
			if code != 0 {
				t.Fatalf("run.sh on a terminal (NO_COLOR %v) exited %d:\n%s\n%s", noColor, code, stdout, stderr)
			}
			if got := strings.Contains(stdout, bold); got == noColor {
				t.Errorf("run.sh on a terminal with NO_COLOR %v: bold headings %v:\n%q", noColor, got, qryTail(stdout, 400))
			}
		}
		// Every run stopped the gateways of the one before.
		now := qryProcsIn(t, bins)
		if len(now) != 2 || slices.ContainsFunc(now, func(pid int) bool { return slices.Contains(first, pid) }) {
			t.Fatalf("gateways %v after three runs (first run's %v): want two new ones", now, first)
		}
	}

	stdout, stderr, code = qryScript(t, env, "bash", "scripts/stop.sh")
	if code != 0 {
		t.Errorf("stop.sh exited %d:\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"stopped admin-gateway (pid ", "stopped query-gateway (pid "} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stop.sh output lacks %q:\n%s\n%s", want, stdout, stderr)
		}
	}
	if left := qryProcsIn(t, bins); len(left) > 0 {
		t.Errorf("gateways %v still running after stop.sh", left)
	}
	for _, name := range []string{"admin-gateway", "query-gateway"} {
		if _, err := os.Stat(filepath.Join(runDir, name+".pid")); !os.IsNotExist(err) {
			t.Errorf("%s.pid left behind: %v", name, err)
		}
	}
	stdout, _, code = qryScript(t, env, "bash", "scripts/stop.sh")
	if code != 0 || !strings.Contains(stdout, "no gateway running") {
		t.Errorf("stop.sh with nothing running: exit %d, %q", code, stdout)
	}
}

// TestStopScriptFindsOrphans: gateways no PID file names (an earlier run's orphans, one of them
// running a binary rebuilt since) are found by executable path and stopped with SIGTERM (exit
// status 0); a stale PID file naming an unrelated process leaves that process alone.
func TestStopScriptFindsOrphans(t *testing.T) {
	bins := qryScriptBins(t)
	runDir := t.TempDir()
	s := qryNewStackFrom(t, bins)
	qg := s.startQuery()
	qryCopyFile(t, filepath.Join(qryBinDir, "admin-gateway"), filepath.Join(bins, "admin-gateway")) // a rebuild
	bystander := exec.Command("sleep", "60")
	if err := bystander.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bystander.Process.Kill(); bystander.Wait() })
	if err := os.WriteFile(filepath.Join(runDir, "admin-gateway.pid"), []byte(strconv.Itoa(bystander.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	env := qryScriptEnv("BIN="+bins, "RUN_DIR="+runDir, "STOP_TIMEOUT=10")
	stdout, stderr, code := qryScript(t, env, "bash", "scripts/stop.sh")
	if code != 0 {
		t.Errorf("stop.sh exited %d:\n%s\n%s", code, stdout, stderr)
	}
	for _, p := range []*qryProc{s.admin, qg} {
		select {
		case <-p.done:
			p.ended = true
			if !p.cmd.ProcessState.Success() {
				t.Errorf("%s exited with %v, want exit status 0 (SIGTERM)", p.name, p.cmd.ProcessState)
			}
		case <-time.After(time.Second):
			t.Errorf("%s still running after stop.sh", p.name)
		}
		if want := fmt.Sprintf("stopped %s (pid %d)", p.name, p.cmd.Process.Pid); !strings.Contains(stdout, want) {
			t.Errorf("stop.sh output lacks %q:\n%s", want, stdout)
		}
	}
	if err := bystander.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("stop.sh signalled the process of a stale PID file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(runDir, "admin-gateway.pid")); !os.IsNotExist(err) {
		t.Errorf("stale admin-gateway.pid left behind: %v", err)
	}
}

// TestStopScriptKillsAHungGateway: a gateway that ignores SIGTERM is killed after STOP_TIMEOUT,
// stop says so on stderr and exits non-zero.
func TestStopScriptKillsAHungGateway(t *testing.T) {
	bins := t.TempDir()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep(1)")
	}
	qryCopyFile(t, sleep, filepath.Join(bins, "query-gateway"))
	// An ignored signal stays ignored across exec: the "gateway" ignores SIGTERM.
	hung := exec.Command("bash", "-c", `trap "" TERM; exec "$0" 600`, filepath.Join(bins, "query-gateway"))
	if err := hung.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { hung.Wait(); close(done) }()
	t.Cleanup(func() { hung.Process.Kill(); <-done })
	qryEventually(t, 5*time.Second, func() error {
		if len(qryProcsIn(t, bins)) != 1 {
			return fmt.Errorf("the hung gateway has not started")
		}
		return nil
	})

	start := time.Now()
	stdout, stderr, code := qryScript(t, qryScriptEnv("BIN="+bins, "RUN_DIR="+t.TempDir(), "STOP_TIMEOUT=1"), "bash", "scripts/stop.sh")
	want := fmt.Sprintf("query-gateway (pid %d) did not exit within 1s of SIGTERM; killing it (SIGKILL)", hung.Process.Pid)
	if code != 1 || !strings.Contains(stderr, want) {
		t.Errorf("stop.sh: exit %d, stderr %q; want exit 1 and %q", code, stderr, want)
	}
	select {
	case <-done:
		if ws, ok := hung.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
			t.Errorf("the hung gateway ended with %v, want SIGKILL", hung.ProcessState)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("the hung gateway survived stop.sh:\n%s\n%s", stdout, stderr)
	}
	if took := time.Since(start); took > 8*time.Second {
		t.Errorf("stop.sh took %v with STOP_TIMEOUT=1", took)
	}
}
