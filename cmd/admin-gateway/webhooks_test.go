package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
	"github.com/phoenix-referral/phoenix/pkg/webhook"
)

// TestGatewayDeliversWebhooks runs the real gateway: an endpoint created over HTTP receives the
// affiliate.created event of a following write, signed with the secret the create answer showed;
// the delivery metrics count it; a stop is graceful. Without PHOENIX_SECRET_KEY the gateway then
// refuses to start, since endpoints exist.
func TestGatewayDeliversWebhooks(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	base := map[string]string{"PHOENIX_DATABASE_URL": dbURL, "PHOENIX_JWT_SECRET": secret,
		"PHOENIX_HTTP_ADDR": "127.0.0.1:0", "PHOENIX_WEBHOOK_ALLOW_PRIVATE": "true",
		"PHOENIX_SECRET_KEY": "a-secret-key-of-at-least-32-bytes-long", "PHOENIX_ADDRESS_HASH_KEY": "an-address-hash-key-of-at-least-32-bytes"}
	var (
		mu     sync.Mutex
		bodies [][]byte
		heads  []http.Header
	)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies, heads = append(bodies, b), append(heads, r.Header.Clone())
		mu.Unlock()
	}))
	defer rcv.Close()

	logs := &safeBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"--auto-migrate"}, envOf(base), io.Discard, logs, listening) }()
	var addr string
	select {
	case a := <-listening:
		addr = "http://" + a.String()
	case err := <-done:
		t.Fatalf("run: %v\n%s", err, logs)
	}
	tok, _ := auth.Sign([]byte(secret), auth.Principal{UserID: "a", Role: auth.RoleTenantAdmin, TenantID: "t1"}, time.Hour, time.Now())
	post := func(path, body string, v any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, addr+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("POST %s: %d %s", path, res.StatusCode, b)
		}
		if v != nil {
			json.Unmarshal(b, v)
		}
	}
	var ep apishape.WebhookEndpointSecret
	post("/v1/webhooks/endpoints", `{"url": "`+rcv.URL+`/hook", "event_types": ["affiliate.created"]}`, &ep)
	post("/v1/affiliates", `{"user_id": "partner_1", "status": "active"}`, nil)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := len(bodies)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no delivery\n%s", logs)
		}
	}
	mu.Lock()
	h, b := heads[0], bodies[0]
	mu.Unlock()
	if err := webhook.Verify(ep.Secret, h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature"), b, time.Now()); err != nil {
		t.Fatalf("signature: %v", err)
	}
	var ev apishape.OutboxEvent
	if err := json.Unmarshal(b, &ev); err != nil || ev.Type != "affiliate.created" || ev.TenantID != "t1" || ev.ID.String() != h.Get("webhook-id") {
		t.Fatalf("event %s: %v", b, err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		res, err := http.Get(addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		m, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if bytes.Contains(m, []byte(`phoenix_webhook_attempts_total{outcome="delivered"} 1`)) &&
			bytes.Contains(m, []byte("phoenix_webhook_backlog_deliveries 0")) &&
			bytes.Contains(m, []byte("phoenix_webhook_oldest_undelivered_seconds")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics:\n%s", m)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	// Endpoints exist: without a secret key the gateway does not start.
	delete(base, "PHOENIX_SECRET_KEY")
	err := run(context.Background(), nil, envOf(base), io.Discard, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "PHOENIX_SECRET_KEY") {
		t.Fatalf("start without a secret key: %v", err)
	}
}
