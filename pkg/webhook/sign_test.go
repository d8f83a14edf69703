package webhook_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/webhook"
)

// TestSignStandardVector: the Standard Webhooks specification's example signs as published.
func TestSignStandardVector(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	ts := time.Unix(1614265330, 0)
	body := []byte(`{"test": 2432232314}`)
	got, err := webhook.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", ts, body, secret)
	if err != nil || got != "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" {
		t.Fatalf("Sign = %q, %v", got, err)
	}
	if err := webhook.Verify(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", got, body, ts.Add(time.Minute)); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

// TestSignTwoSecretsAndVerifyRefusals: during a rotation both secrets sign, space-separated, and
// either verifies; a changed body, id or timestamp, another secret or a stale timestamp fail.
func TestSignTwoSecretsAndVerifyRefusals(t *testing.T) {
	oldS, newS := webhook.NewSecret(), webhook.NewSecret()
	now := time.Now()
	body := []byte(`{"id":"x"}`)
	sig, err := webhook.Sign("evt_1", now, body, newS, oldS)
	if err != nil || len(strings.Fields(sig)) != 2 {
		t.Fatalf("Sign = %q, %v", sig, err)
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	for _, s := range []string{oldS, newS} {
		if err := webhook.Verify(s, "evt_1", ts, sig, body, now); err != nil {
			t.Errorf("Verify with one of the two secrets: %v", err)
		}
	}
	for name, check := range map[string]error{
		"body":      webhook.Verify(newS, "evt_1", ts, sig, []byte(`{"id":"y"}`), now),
		"id":        webhook.Verify(newS, "evt_2", ts, sig, body, now),
		"timestamp": webhook.Verify(newS, "evt_1", strconv.FormatInt(now.Unix()+1, 10), sig, body, now),
		"secret":    webhook.Verify(webhook.NewSecret(), "evt_1", ts, sig, body, now),
		"stale":     webhook.Verify(newS, "evt_1", ts, sig, body, now.Add(10*time.Minute)),
		"garbage":   webhook.Verify(newS, "evt_1", ts, "v2,abc v1,!!!", body, now),
	} {
		if check == nil {
			t.Errorf("a changed %s verified", name)
		}
	}
}

// TestSealer: a sealed secret opens with its key only, and sealing twice differs.
func TestSealer(t *testing.T) {
	a, _ := webhook.NewSealer("key-a")
	b, _ := webhook.NewSealer("key-b")
	s1, s2 := a.Seal([]byte("whsec_x")), a.Seal([]byte("whsec_x"))
	if string(s1) == string(s2) || strings.Contains(string(s1), "whsec_x") {
		t.Fatal("sealing is deterministic or shows the plain text")
	}
	if p, err := a.Open(s1); err != nil || string(p) != "whsec_x" {
		t.Fatalf("Open = %q, %v", p, err)
	}
	if _, err := b.Open(s1); err == nil {
		t.Fatal("another key opened the secret")
	}
	if _, err := webhook.NewSealer(""); err == nil {
		t.Fatal("an empty key was accepted")
	}
}
