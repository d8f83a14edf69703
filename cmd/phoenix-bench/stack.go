package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Proc is one gateway process the bench started.
type Proc struct {
	Name string
	Bin  string
	Args []string
	Env  []string
	Addr string // host:port
	Log  string
	cmd  *exec.Cmd
	done chan struct{}
}

// URL is the process's base URL.
func (p *Proc) URL() string { return "http://" + p.Addr }

// Start launches the process with its log appended to p.Log and waits until /readyz answers 200.
func (p *Proc) Start(ctx context.Context) error {
	_, port, _ := net.SplitHostPort(p.Addr)
	n, _ := strconv.Atoi(port)
	if err := portFree(n); err != nil {
		return fmt.Errorf("%s: %w", p.Name, err)
	}
	if err := p.spawn(); err != nil {
		return err
	}
	return p.WaitReady(ctx, 30*time.Second)
}

// spawn starts the process without waiting for it.
func (p *Proc) spawn() error {
	if err := os.MkdirAll(filepath.Dir(p.Log), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.Bin, p.Args...)
	cmd.Env = append(os.Environ(), p.Env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	p.cmd = cmd
	p.done = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return nil
}

// WaitReady polls /readyz until it answers 200.
func (p *Proc) WaitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited early (log: %s)", p.Name, p.Log)
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL()+"/readyz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %s (log: %s)", p.Name, limit, p.Log)
}

// Alive reports whether the process is running.
func (p *Proc) Alive() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL and waits for the exit.
func (p *Proc) Kill() {
	if !p.Alive() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and waits up to 10 s, then kills.
func (p *Proc) Stop() {
	if !p.Alive() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.Kill()
	}
}

// Pid is the process id (0 when not running).
func (p *Proc) Pid() int {
	if !p.Alive() {
		return 0
	}
	return p.cmd.Process.Pid
}

// Memory reads VmRSS and VmHWM (peak RSS) in bytes from /proc.
func (p *Proc) Memory() (rss, hwm int64) {
	pid := p.Pid()
	if pid == 0 {
		return 0, 0
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(fields[0], 10, 64)
		switch k {
		case "VmRSS":
			rss = n * 1024
		case "VmHWM":
			hwm = n * 1024
		}
	}
	return rss, hwm
}

// ResetPeak resets the kernel's peak-RSS mark (VmHWM) so the next reading covers what follows.
func (p *Proc) ResetPeak() {
	if pid := p.Pid(); pid != 0 {
		_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
	}
}

// Metric reads one unlabelled series from the process's /metrics (-1 when absent).
func (p *Proc) Metric(ctx context.Context, name string) float64 {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL()+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, name+" ") {
			v, err := strconv.ParseFloat(strings.TrimSpace(line[len(name)+1:]), 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

// RedisServer is the bench's private Redis server (a child process).
type RedisServer struct {
	Port int
	Dir  string
	Log  string
	proc *Proc
}

func (r *RedisServer) args() []string {
	return []string{"--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", r.Dir, "--daemonize", "no", "--logfile", r.Log}
}

// Start launches redis-server and waits until it answers PING.
func (r *RedisServer) Start(ctx context.Context) error {
	if err := portFree(r.Port); err != nil {
		return err
	}
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		return err
	}
	r.proc = &Proc{Name: "redis-server", Bin: "redis-server", Args: r.args(), Log: r.Log + ".stdout"}
	if err := r.proc.spawn(); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if out, err := exec.CommandContext(ctx, "redis-cli", "-p", strconv.Itoa(r.Port), "ping").Output(); err == nil && strings.TrimSpace(string(out)) == "PONG" {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("private redis-server on port %d did not answer PING (log %s)", r.Port, r.Log)
}

// Kill kills the server (SIGKILL: a crash, nothing saved).
func (r *RedisServer) Kill() {
	if r.proc != nil {
		r.proc.Kill()
	}
}

// portFree fails when something already listens on 127.0.0.1:port.
func portFree(port int) error {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return fmt.Errorf("port %d is in use (pick other ports with --admin-port/--query-port/--query2-port/--redis-port): %w", port, err)
	}
	return ln.Close()
}
