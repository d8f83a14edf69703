package cachetest

import (
	"context"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) {
	code := m.Run()
	StopClusters()
	os.Exit(code)
}

// TestCluster: the cluster spreads keys over three masters, runs a MULTI/EXEC within one hash
// tag, refuses one across slots (CROSSSLOT), delivers Pub/Sub from any node to a subscriber on
// another, and comes back empty to the next test.
func TestCluster(t *testing.T) {
	ctx := context.Background()
	addrs, rdb := Cluster(t)
	firstAddrs = addrs
	if len(addrs) != 3 {
		t.Fatalf("%d nodes, want 3", len(addrs))
	}
	masters := map[string]bool{}
	for i := range 100 {
		k := "k" + strconv.Itoa(i)
		if err := rdb.Set(ctx, k, i, 0).Err(); err != nil {
			t.Fatal(err)
		}
		n, err := rdb.MasterForKey(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		masters[n.Options().Addr] = true
	}
	if len(masters) != 3 {
		t.Errorf("keys live on %d masters, want 3", len(masters))
	}
	if _, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "phx:{t1}:a", 1, 0)
		p.Set(ctx, "phx:{t1}:b", 2, 0)
		return nil
	}); err != nil {
		t.Errorf("MULTI/EXEC in one hash tag: %v", err)
	}
	if n := redis.NewClient(&redis.Options{Addr: addrs[0]}); n.MSet(ctx, "phx:{t1}:a", 1, "phx:{t2}:a", 2).Err() == nil {
		t.Error("a command across slots was accepted")
	} else {
		n.Close()
	}

	sub := redis.NewClient(&redis.Options{Addr: addrs[1]})
	defer sub.Close()
	ps := sub.Subscribe(ctx, "phx:invalidate:{x}")
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	subs, err := Subscribers(ctx, rdb, "phx:invalidate:*")
	if err != nil || subs["phx:invalidate:{x}"] != 1 {
		t.Errorf("subscribers = %v, %v; want one on phx:invalidate:{x}", subs, err)
	}
	pub := redis.NewClient(&redis.Options{Addr: addrs[2]})
	defer pub.Close()
	if err := pub.Publish(ctx, "phx:invalidate:{x}", "t1").Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-ps.Channel():
		if m.Payload != "t1" {
			t.Errorf("payload %q", m.Payload)
		}
	case <-time.After(5 * time.Second):
		t.Error("a message published on one node never reached a subscriber on another")
	}
}

// firstAddrs are TestCluster's nodes.
var firstAddrs []string

// TestClusterReused: the next test gets the same cluster back, empty.
func TestClusterReused(t *testing.T) {
	ctx := context.Background()
	addrs, rdb := Cluster(t)
	if firstAddrs != nil && !slices.Equal(addrs, firstAddrs) {
		t.Errorf("a new cluster %v, want %v again", addrs, firstAddrs)
	}
	for _, k := range []string{"k1", "k2", "k3", "phx:{t1}:a"} {
		if v, err := rdb.Exists(ctx, k).Result(); err != nil || v != 0 {
			t.Errorf("key %s left from the previous test (%v)", k, err)
		}
	}
}

// TestClusterFreeze: a frozen cluster answers nothing until it is thawed, then serves its data
// again; Freeze refuses a Redis it did not start.
func TestClusterFreeze(t *testing.T) {
	ctx := context.Background()
	addrs, rdb := Cluster(t)
	if err := rdb.Set(ctx, "phx:{t1}:k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	thaw, err := Freeze(ctx, rdb)
	if err != nil {
		t.Fatal(err)
	}
	impatient := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ReadTimeout: 100 * time.Millisecond,
		MaxRetries: -1, MaxRedirects: -1})
	defer impatient.Close()
	if err := impatient.Get(ctx, "phx:{t1}:k").Err(); err == nil {
		t.Error("a frozen cluster answered")
	}
	thaw()
	if v, err := rdb.Get(ctx, "phx:{t1}:k").Result(); err != nil || v != "v" {
		t.Errorf("after the thaw: %q, %v", v, err)
	}
	other := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:6379"}})
	defer other.Close()
	if _, err := Freeze(ctx, other); err == nil {
		t.Error("Freeze accepted a Redis it did not start")
	}
}
