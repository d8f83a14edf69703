package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/outbox"
	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
	"github.com/phoenix-referral/phoenix/pkg/webhook"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// post sends a body signed by Phoenix's signer with secret (at ts) to h.
func post(t *testing.T, h http.Handler, secret, id string, ts time.Time, body []byte) int {
	t.Helper()
	sig, err := webhook.Sign(id, ts, body, secret)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}

// TestReceiverCreditsOnce: the example verifies Phoenix's signatures (and refuses another
// secret, a changed body, a stale timestamp) and credits a reward once however often it comes.
func TestReceiverCreditsOnce(t *testing.T) {
	secret := webhook.NewSecret()
	wallet := NewWallet()
	h := NewHandler(secret, wallet, time.Now)
	id := uuid.NewString()
	data, _ := json.Marshal(apishape.Reward{ID: uuid.New(), UserID: "alice", Role: "referrer", CurrencyID: "points", Amount: 100})
	body, _ := json.Marshal(apishape.OutboxEvent{ID: uuid.MustParse(id), Type: outbox.RewardCreated, TenantID: "demo",
		Timestamp: apishape.Time(time.Now()), Data: data})
	for range 3 {
		if code := post(t, h, secret, id, time.Now(), body); code != http.StatusNoContent {
			t.Fatalf("a signed delivery answered %d", code)
		}
	}
	if got := wallet.Balance("alice", "points"); got != 100 {
		t.Fatalf("balance after three deliveries of one event = %d, want 100", got)
	}
	if code := post(t, h, webhook.NewSecret(), uuid.NewString(), time.Now(), body); code != http.StatusUnauthorized {
		t.Errorf("another secret: %d", code)
	}
	if code := post(t, h, secret, id, time.Now().Add(-time.Hour), body); code != http.StatusUnauthorized {
		t.Errorf("a stale timestamp: %d", code)
	}
	sig, _ := webhook.Sign(id, time.Now(), body, secret)
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(append(body, ' ')))
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(time.Now().Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("a changed body: %d", rec.Code)
	}
}

// TestReceiverBehindDispatcher: Phoenix's dispatcher delivers a webhook.test event to the
// example, which verifies it.
func TestReceiverBehindDispatcher(t *testing.T) {
	ctx := context.Background()
	secret := webhook.NewSecret()
	got := make(chan int, 10)
	inner := NewHandler(secret, NewWallet(), time.Now)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		inner.ServeHTTP(rec, r)
		got <- rec.Code
		w.WriteHeader(rec.Code)
	}))
	defer srv.Close()
	store := postgres.NewStore(pgtest.MustOpenDB(t))
	sealer, _ := webhook.NewSealer("example-key")
	tenant := pgtest.Tenant(t)
	ep, err := store.CreateEndpoint(ctx, outbox.Endpoint{TenantID: tenant, URL: srv.URL, EventTypes: []string{}, Active: true},
		sealer.Seal([]byte(secret)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.SendTest(ctx, tenant, ep.ID); err != nil {
		t.Fatal(err)
	}
	d := webhook.NewDispatcher(store, sealer, webhook.Config{AllowPrivate: true, Poll: 20 * time.Millisecond}, nil,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go d.Run(rctx)
	select {
	case code := <-got:
		if code != http.StatusNoContent {
			t.Fatalf("the example answered %d to a real delivery", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery")
	}
}
