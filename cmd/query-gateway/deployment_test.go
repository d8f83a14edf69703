package main

import (
	"context"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/phoenix-referral/phoenix/pkg/cache"
	"github.com/phoenix-referral/phoenix/pkg/cache/cachetest"
	"github.com/phoenix-referral/phoenix/pkg/postgres"
)

// TestDeploymentNamesTheChannel: the in-process cache follows the channel PHOENIX_DEPLOYMENT
// names, and without it the one named after the database.
func TestDeploymentNamesTheChannel(t *testing.T) {
	env, rdb := qryEnv(t)
	db, err := sqlx.Open("postgres", env["PHOENIX_DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	derived, err := postgres.DefaultDeployment(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ set, want string }{{"blue", "blue"}, {"", derived}} {
		env["PHOENIX_DEPLOYMENT"] = c.set
		g := qryRun(t, env)
		qryWaitIdle(t, g.logs, rdb)
		subs, err := cachetest.Subscribers(context.Background(), rdb, "*")
		if err != nil {
			t.Fatal(err)
		}
		if want := cache.InvalidationChannel(c.want); len(subs) != 1 || subs[want] != 1 {
			t.Errorf("PHOENIX_DEPLOYMENT=%q: subscriptions %v, want one to %q", c.set, subs, want)
		}
		g.stop(5 * time.Second)
		// The next run must not see this one's subscription.
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if subs, err := cachetest.Subscribers(context.Background(), rdb, "*"); err == nil && len(subs) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the stopped gateway's subscription stayed")
			}
		}
	}
}
