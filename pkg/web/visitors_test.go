package web

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// TestVisitorTableBounded: a flood of distinct addresses never grows the table past its
// bound — addresses beyond it share the overflow slot — and windows that ended make room again;
// an address is admitted again once its window has passed.
func TestVisitorTableBounded(t *testing.T) {
	clock := time.Now()
	v := NewVisitorLimit(referral.AttemptLimit{Max: 2, Window: time.Minute}, 100)
	v.now = func() time.Time { return clock }
	fail := func(addr string) error {
		done, err := v.Reserve(addr)
		if err == nil {
			done(true)
		}
		return err
	}
	limited := 0
	for i := range 10_000 {
		if fail(fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255)) != nil {
			limited++
		}
		if len(v.addrs) > 100 {
			t.Fatalf("%d addresses tracked, bound 100", len(v.addrs))
		}
	}
	// 100 tracked addresses failed once each; the overflow slot took 2 failures for the rest.
	if limited != 10_000-100-2 {
		t.Fatalf("%d attempts limited, want %d", limited, 10_000-102)
	}
	if fail("10.0.0.1") != nil || fail("10.0.0.1") == nil {
		t.Fatal("a tracked address is not limited at its own count")
	}
	var rl *referral.Error
	if err := fail("10.0.0.1"); !errors.As(err, &rl) || rl.RetryAfter != 60 {
		t.Fatalf("limited answer %v", err)
	}

	clock = clock.Add(time.Minute)
	if err := fail("192.0.2.1"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	if _, ok := v.addrs["192.0.2.1"]; !ok || len(v.addrs) != 1 {
		t.Fatalf("ended windows not dropped: %d addresses", len(v.addrs))
	}
	if fail("10.0.0.1") != nil {
		t.Fatal("an address stays limited after its window")
	}
}

func TestVisitorKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":            "192.0.2.1",
		"::ffff:192.0.2.1":     "192.0.2.1",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2::9":      "2001:db8:1:2::/64",
		"fe80::1%eth0":         "fe80::/64",
		"not an address":       "invalid",
		"":                     "invalid",
	} {
		if got := visitorKey(in); got != want {
			t.Errorf("visitorKey(%q) = %q, want %q", in, got, want)
		}
	}
}
