package cachetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterEnv is the switch that runs the Redis-facing test suites (the Query Gateway's, the
// end-to-end suite) against a real Redis Cluster instead of a single node: set it to 1.
const ClusterEnv = "PHOENIX_TEST_REDIS_CLUSTER"

// ClusterMode reports whether ClusterEnv asks for a Redis Cluster.
func ClusterMode() bool { return os.Getenv(ClusterEnv) == "1" }

// Gateway returns a Redis of this test only, as a Query Gateway is configured for it: the
// environment variable and its value (PHOENIX_REDIS_URL of a Server, or, in ClusterMode,
// PHOENIX_REDIS_CLUSTER_ADDRS of a Cluster) and a client.
func Gateway(tb testing.TB) (name, value string, rdb redis.UniversalClient) {
	tb.Helper()
	if ClusterMode() {
		addrs, c := Cluster(tb)
		return "PHOENIX_REDIS_CLUSTER_ADDRS", strings.Join(addrs, ","), c
	}
	url, c := Server(tb)
	return "PHOENIX_REDIS_URL", url, c
}

// Client returns a client of a Redis of this test only: a Server's, or in ClusterMode a
// Cluster's.
func Client(tb testing.TB) redis.UniversalClient {
	tb.Helper()
	_, _, rdb := Gateway(tb)
	return rdb
}

// Keys returns the keys matching pattern on every master behind rdb (KEYS on a cluster client
// asks one node only). For tests: it scans the whole keyspace.
func Keys(ctx context.Context, rdb redis.UniversalClient, pattern string) ([]string, error) {
	c, ok := rdb.(*redis.ClusterClient)
	if !ok {
		return rdb.Keys(ctx, pattern).Result()
	}
	var mu sync.Mutex
	var out []string
	err := c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		keys, err := n.Keys(ctx, pattern).Result()
		mu.Lock()
		defer mu.Unlock()
		out = append(out, keys...)
		return err
	})
	return out, err
}

// FlushAll empties every master behind rdb (a single node's current database, or every master
// of a cluster): a wiped Redis, as FLUSHALL leaves it. Use it on test Redis servers only.
func FlushAll(ctx context.Context, rdb redis.UniversalClient) error {
	if c, ok := rdb.(*redis.ClusterClient); ok {
		return c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error { return n.FlushDB(ctx).Err() })
	}
	return rdb.FlushDB(ctx).Err()
}

// Subscribers returns the Pub/Sub channels matching pattern that have subscribers, with their
// counts, over every node behind rdb: in a cluster a subscription lives on the one node its
// connection happens to use (messages reach every node).
func Subscribers(ctx context.Context, rdb redis.UniversalClient, pattern string) (map[string]int64, error) {
	out := map[string]int64{}
	count := func(ctx context.Context, n *redis.Client) error {
		channels, err := n.PubSubChannels(ctx, pattern).Result()
		if err != nil || len(channels) == 0 {
			return err
		}
		subs, err := n.PubSubNumSub(ctx, channels...).Result()
		for ch, k := range subs {
			out[ch] += k
		}
		return err
	}
	if c, ok := rdb.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		err := c.ForEachShard(ctx, func(ctx context.Context, n *redis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			return count(ctx, n)
		})
		return out, err
	}
	if c, ok := rdb.(*redis.Client); ok {
		return out, count(ctx, c)
	}
	return nil, fmt.Errorf("cachetest: unsupported client %T", rdb)
}

// cluster is three redis-server masters on loopback ports, joined into one Redis Cluster.
type cluster struct {
	dir   string
	addrs []string
	procs []*exec.Cmd
	ended []chan struct{} // closed when the matching process has exited
}

var (
	startMu    sync.Mutex // one cluster starts at a time, so two never pick the same ports
	clustersMu sync.Mutex
	idle       []*cluster // flushed, waiting for a test
	started    []*cluster // every cluster of this test binary
)

// Cluster returns a Redis Cluster of this test only: three masters on free loopback ports
// (redis-server --cluster-enabled yes, joined by redis-cli --cluster create with no replicas),
// with every slot served. Clusters are kept for the test binary: when the test ends, its
// cluster is flushed and handed to the next test that asks, so a package pays for one cluster
// per test running at the same time; StopClusters (from TestMain) stops them all. The test is
// skipped when redis-server or redis-cli is not installed.
func Cluster(tb testing.TB) (addrs []string, rdb *redis.ClusterClient) {
	tb.Helper()
	clustersMu.Lock()
	var c *cluster
	if n := len(idle); n > 0 {
		c, idle = idle[n-1], idle[:n-1]
	}
	clustersMu.Unlock()
	if c == nil {
		var err error
		if c, err = startCluster(tb); err != nil {
			tb.Fatalf("cachetest: %v", err)
		}
	}
	rdb = redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.addrs})
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := FlushAll(ctx, rdb)
		rdb.Close()
		clustersMu.Lock()
		defer clustersMu.Unlock()
		if err == nil {
			idle = append(idle, c)
		} else {
			c.stop() // a cluster the test broke is not reused
		}
	})
	return c.addrs, rdb
}

// StopClusters stops every cluster Cluster started; call it after the package's tests ran.
func StopClusters() {
	clustersMu.Lock()
	defer clustersMu.Unlock()
	for _, c := range started {
		c.stop()
	}
	started, idle = nil, nil
}

func (c *cluster) stop() {
	for i, p := range c.procs {
		p.Process.Kill()
		<-c.ended[i]
	}
	c.procs, c.ended = nil, nil
	os.RemoveAll(c.dir)
}

func startCluster(tb testing.TB) (*cluster, error) {
	server, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Skip("redis-server is not installed: this test needs a Redis Cluster of its own")
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		tb.Skip("redis-cli is not installed: this test needs it to form a Redis Cluster")
	}
	startMu.Lock()
	defer startMu.Unlock()
	dir, err := os.MkdirTemp("", "phx-cluster")
	if err != nil {
		return nil, err
	}
	c := &cluster{dir: dir}
	clustersMu.Lock()
	started = append(started, c)
	clustersMu.Unlock()
	fail := func(err error) (*cluster, error) {
		logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
		for _, l := range logs {
			if b, rerr := os.ReadFile(l); rerr == nil {
				err = fmt.Errorf("%w\n%s:\n%s", err, filepath.Base(l), b)
			}
		}
		c.stop()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range 3 {
		port, err := freeClusterPort()
		if err != nil {
			return fail(err)
		}
		p := strconv.Itoa(port)
		// Without replicas there is nothing to fail over to: a long node timeout keeps a frozen
		// cluster (Freeze) from declaring its own nodes failed when it thaws.
		cmd := exec.Command(server, "--port", p, "--bind", "127.0.0.1", "--cluster-enabled", "yes",
			"--cluster-config-file", "nodes-"+p+".conf", "--cluster-node-timeout", "60000",
			"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", p+".log")
		if err := cmd.Start(); err != nil {
			return fail(err)
		}
		ended := make(chan struct{})
		go func() {
			defer close(ended)
			cmd.Wait()
		}()
		c.procs, c.ended = append(c.procs, cmd), append(c.ended, ended)
		addr := "127.0.0.1:" + p
		c.addrs = append(c.addrs, addr)
		// The server answering must be this one: another process may have taken the port since
		// it was found free.
		n := redis.NewClient(&redis.Options{Addr: addr})
		pid := "process_id:" + strconv.Itoa(cmd.Process.Pid) + "\r\n"
		for info, _ := n.Info(ctx, "server").Result(); !strings.Contains(info, pid); info, _ = n.Info(ctx, "server").Result() {
			select {
			case <-ended:
				n.Close()
				return fail(fmt.Errorf("redis-server on %s exited", addr))
			default:
			}
			if ctx.Err() != nil {
				n.Close()
				return fail(fmt.Errorf("redis-server on %s did not come up", addr))
			}
			time.Sleep(20 * time.Millisecond)
		}
		n.Close()
	}
	create := exec.CommandContext(ctx, cli, append(append([]string{"--cluster", "create"}, c.addrs...),
		"--cluster-replicas", "0", "--cluster-yes")...)
	if out, err := create.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("redis-cli --cluster create: %v\n%s", err, out))
	}
	// Every node must agree that the cluster is whole before a client uses it.
	for _, addr := range c.addrs {
		n := redis.NewClient(&redis.Options{Addr: addr})
		for {
			info, err := n.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:3") {
				break
			}
			if ctx.Err() != nil {
				n.Close()
				return fail(fmt.Errorf("cluster node %s never reached cluster_state:ok: %q", addr, info))
			}
			time.Sleep(50 * time.Millisecond)
		}
		n.Close()
	}
	return c, nil
}

// freeClusterPort returns a loopback port that is free, as is its cluster bus port (port +
// 10000).
func freeClusterPort() (int, error) {
	for range 100 {
		port := 20000 + rand.IntN(30000)
		ok := true
		for _, p := range []int{port, port + 10000} {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				ok = false
				break
			}
			ln.Close()
		}
		if ok {
			return port, nil
		}
	}
	return 0, fmt.Errorf("no free loopback port pair for a cluster node")
}

// Freeze stops (SIGSTOP) every node of a cluster Cluster started, the one rdb is a client of,
// until the returned thaw is called (SIGCONT): to every client the cluster stops answering, as
// in an outage, while its state survives. It refuses any other Redis.
func Freeze(ctx context.Context, rdb *redis.ClusterClient) (thaw func(), err error) {
	var pids []int
	var mu sync.Mutex
	err = rdb.ForEachShard(ctx, func(ctx context.Context, n *redis.Client) error {
		info, err := n.Info(ctx, "server").Result()
		if err != nil {
			return err
		}
		for _, line := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "process_id:"); ok {
				pid, err := strconv.Atoi(v)
				if err != nil {
					return err
				}
				mu.Lock()
				pids = append(pids, pid)
				mu.Unlock()
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var procs []*os.Process
	clustersMu.Lock()
	for _, pid := range pids {
		for _, c := range started {
			for _, p := range c.procs {
				if p.Process.Pid == pid {
					procs = append(procs, p.Process)
				}
			}
		}
	}
	clustersMu.Unlock()
	if len(procs) != len(pids) || len(procs) == 0 {
		return nil, fmt.Errorf("cachetest: Freeze: servers %v are not all of this test binary's clusters", pids)
	}
	for _, p := range procs {
		if err := p.Signal(syscall.SIGSTOP); err != nil {
			return nil, err
		}
	}
	return func() {
		for _, p := range procs {
			p.Signal(syscall.SIGCONT)
		}
	}, nil
}
