package outbox_test

import (
	"testing"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/outbox"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

func TestCursorRoundTrip(t *testing.T) {
	for _, c := range []outbox.Cursor{{}, {Seen: "10:20:"}, {Seen: "10:20:12,15", Window: "18:30:19", Xid: 17, Seq: 99}} {
		got, err := outbox.ParseCursor(c.String())
		if err != nil || got != c {
			t.Errorf("ParseCursor(%v.String()) = %v, %v", c, got, err)
		}
	}
	bad := []string{"", "head", "!!!", outbox.Cursor{Seen: "20:10:"}.String(), outbox.Cursor{Seen: "10:20:25"}.String(),
		outbox.Cursor{Seen: "10:20:15,12"}.String(), outbox.Cursor{Seen: "x:y:"}.String(), outbox.Cursor{Seen: "0:1:"}.String(),
		outbox.Cursor{Seen: "1:2:", Xid: 5}.String(), outbox.Cursor{Seen: "1:2:;drop"}.String()}
	for _, s := range bad {
		if _, err := outbox.ParseCursor(s); referral.ErrorCode(err) != referral.EValidation {
			t.Errorf("ParseCursor(%q) = %v, want VALIDATION_FAILED", s, err)
		}
	}
}

func TestRetrySchedule(t *testing.T) {
	for n, base := range outbox.Schedule {
		for _, u := range []float64{0, 0.5, 0.999999} {
			d, ok := outbox.Retry(outbox.Schedule, n+1, u)
			lo, hi := time.Duration(float64(base)*0.9), time.Duration(float64(base)*1.1)
			if !ok || d < lo || d > hi {
				t.Errorf("Retry(%d, %v) = %v, %v; want within [%v, %v]", n+1, u, d, ok, lo, hi)
			}
		}
	}
	if d, ok := outbox.Retry(outbox.Schedule, 1, 0.5); d != 5*time.Second || !ok {
		t.Errorf("first retry at the middle of the jitter = %v", d)
	}
	if _, ok := outbox.Retry(outbox.Schedule, len(outbox.Schedule)+1, 0.5); ok {
		t.Error("a delivery past the schedule is retried")
	}
}

func TestDeactivate(t *testing.T) {
	now := time.Now()
	since := now.Add(-outbox.DeactivateAfter)
	recent := now.Add(-outbox.DeactivateAfter + time.Minute)
	if outbox.Deactivate(nil, now) || outbox.Deactivate(&recent, now) || !outbox.Deactivate(&since, now) {
		t.Error("Deactivate disagrees with five days of failures")
	}
}

func TestEndpointCheckAndWants(t *testing.T) {
	cases := []struct {
		url     string
		private bool
		ok      bool
	}{
		{"https://hooks.example.com/p?x=1", false, true},
		{"http://hooks.example.com/p", false, false},
		{"http://127.0.0.1:8080/p", true, true},
		{"https://u:p@hooks.example.com/", false, false},
		{"https://hooks.example.com/#frag", false, false},
		{"hooks.example.com/p", false, false},
		{"https:///p", false, false},
	}
	for _, c := range cases {
		err := outbox.Endpoint{URL: c.url}.Check(c.private)
		if (err == nil) != c.ok {
			t.Errorf("Check(%q, private=%v) = %v", c.url, c.private, err)
		}
	}
	all := outbox.Endpoint{}
	some := outbox.Endpoint{EventTypes: []string{outbox.RewardCreated, outbox.WebhookTest}}
	if !all.Wants(outbox.AffiliateCreated) || all.Wants(outbox.WebhookTest) || !some.Wants(outbox.RewardCreated) ||
		some.Wants(outbox.AffiliateCreated) || some.Wants(outbox.WebhookTest) {
		t.Error("Wants disagrees with the subscription rule")
	}
}
