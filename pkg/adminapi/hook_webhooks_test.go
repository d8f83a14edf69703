package adminapi_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/adminapi"
	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/outbox"
)

// hookEndpoint creates an endpoint and returns it with its secret.
func hookEndpoint(t *testing.T, e *env, body map[string]any) apishape.WebhookEndpointSecret {
	t.Helper()
	var out apishape.WebhookEndpointSecret
	e.do(http.MethodPost, "/v1/webhooks/endpoints", e.admin(), body).must(t, http.StatusOK, &out)
	return out
}

// TestWebhookEndpoints: create shows the secret once (never in GET or list), PUT replaces with
// defaults, rotation shows a new secret, an Idempotency-Key replay of create answers the same
// secret while the database holds it only sealed, DELETE hides the endpoint.
func TestWebhookEndpoints(t *testing.T) {
	e := newEnv(t)
	created := hookEndpoint(t, e, map[string]any{"url": "https://wallet.example.com/hook",
		"description": "wallet", "event_types": []string{outbox.RewardCreated}})
	if !strings.HasPrefix(created.Secret, "whsec_") || !created.Active || created.Description != "wallet" ||
		len(created.EventTypes) != 1 || created.EventTypes[0] != outbox.RewardCreated {
		t.Fatalf("created = %+v", created)
	}
	id := created.ID.String()
	got := e.do(http.MethodGet, "/v1/webhooks/endpoints/"+id, e.admin(), nil).must(t, http.StatusOK, nil)
	if bytes.Contains(got.Body, []byte("whsec_")) || bytes.Contains(got.Body, []byte(`"secret"`)) {
		t.Fatalf("GET shows the secret: %s", got.Body)
	}
	list := e.do(http.MethodGet, "/v1/webhooks/endpoints", e.admin(), nil).must(t, http.StatusOK, nil)
	if bytes.Contains(list.Body, []byte("whsec_")) || !bytes.Contains(list.Body, []byte(id)) {
		t.Fatalf("list: %s", list.Body)
	}
	// PUT replaces: omitted fields take their defaults; read-only fields are ignored.
	var replaced apishape.WebhookEndpoint
	e.do(http.MethodPut, "/v1/webhooks/endpoints/"+id, e.admin(), map[string]any{"url": "https://wallet.example.com/v2",
		"id": id, "created_at": "2020-01-01T00:00:00Z"}).must(t, http.StatusOK, &replaced)
	if replaced.URL != "https://wallet.example.com/v2" || replaced.Description != "" || len(replaced.EventTypes) != 0 || !replaced.Active {
		t.Fatalf("replaced = %+v", replaced)
	}
	// Rotation shows a new secret.
	var rotated apishape.WebhookEndpointSecret
	e.do(http.MethodPost, "/v1/webhooks/endpoints/"+id+"/rotate-secret", e.admin(), nil).must(t, http.StatusOK, &rotated)
	if !strings.HasPrefix(rotated.Secret, "whsec_") || rotated.Secret == created.Secret {
		t.Fatalf("rotated secret %q (was %q)", rotated.Secret, created.Secret)
	}
	// An Idempotency-Key replay answers the same secret; nothing in the database shows it.
	body := map[string]any{"url": "https://crm.example.com/hook"}
	var first, again apishape.WebhookEndpointSecret
	e.do(http.MethodPost, "/v1/webhooks/endpoints", e.admin(), body, "Idempotency-Key", "k1").must(t, http.StatusOK, &first)
	res := e.do(http.MethodPost, "/v1/webhooks/endpoints", e.admin(), body, "Idempotency-Key", "k1").must(t, http.StatusOK, &again)
	if res.Header.Get("Idempotent-Replay") != "true" || again.Secret != first.Secret || again.ID != first.ID {
		t.Fatalf("replay = %+v (%s), first %+v", again, res.Header, first)
	}
	for _, secret := range []string{created.Secret, rotated.Secret, first.Secret} {
		var n int
		const q = `SELECT (SELECT count(*) FROM idempotency_keys WHERE position($1::bytea IN body) > 0)
			+ (SELECT count(*) FROM webhook_endpoints WHERE position($1::bytea IN secret) > 0
			    OR position($1::bytea IN coalesce(previous_secret, '')) > 0)`
		if err := e.store.DB().Get(&n, q, []byte(strings.TrimPrefix(secret, "whsec_"))); err != nil || n != 0 {
			t.Fatalf("the database holds a secret in the clear (%d rows, %v)", n, err)
		}
	}
	e.do(http.MethodDelete, "/v1/webhooks/endpoints/"+id, e.admin(), nil).must(t, http.StatusNoContent, nil)
	e.do(http.MethodGet, "/v1/webhooks/endpoints/"+id, e.admin(), nil).fail(t, http.StatusNotFound, "NOT_FOUND")
	e.do(http.MethodDelete, "/v1/webhooks/endpoints/"+id, e.admin(), nil).fail(t, http.StatusNotFound, "NOT_FOUND")
}

// TestWebhookEndpointValidation: https only (without PHOENIX_WEBHOOK_ALLOW_PRIVATE), known event
// types, no secret or other read-only field on POST, and nothing is written by a refusal.
func TestWebhookEndpointValidation(t *testing.T) {
	e := newEnv(t)
	bad := []struct {
		body  string
		field string
	}{
		{`{}`, "url"},
		{`{"url": "http://wallet.example.com/hook"}`, "url"},
		{`{"url": "ftp://wallet.example.com/hook"}`, "url"},
		{`{"url": "https://user:pw@wallet.example.com/hook"}`, "url"},
		{`{"url": "/relative"}`, "url"},
		{`{"url": "https://wallet.example.com/hook", "event_types": ["nope"]}`, "event_types"},
		{`{"url": "https://wallet.example.com/hook", "event_types": ["reward.created", "reward.created"]}`, "event_types"},
		{`{"url": "https://wallet.example.com/hook", "secret": "whsec_AAAA"}`, "secret"},
		{`{"url": "https://wallet.example.com/hook", "description": "` + strings.Repeat("x", 1001) + `"}`, "description"},
	}
	for _, b := range bad {
		eb := e.do(http.MethodPost, "/v1/webhooks/endpoints", e.admin(), b.body).fail(t, http.StatusBadRequest, "VALIDATION_FAILED")
		if _, ok := eb.Error.Fields[b.field]; !ok {
			t.Errorf("%s: fields = %v, want %s", b.body, eb.Error.Fields, b.field)
		}
	}
	var list apishape.List[apishape.WebhookEndpoint]
	e.do(http.MethodGet, "/v1/webhooks/endpoints", e.admin(), nil).must(t, http.StatusOK, &list)
	if list.Total != 0 {
		t.Fatalf("refused endpoints were stored: %+v", list)
	}
	// With private destinations allowed (development), http is accepted.
	dev := newEnv(t, func(c *adminapi.Config) { c.AllowPrivateWebhooks = true })
	dev.do(http.MethodPost, "/v1/webhooks/endpoints", dev.admin(), `{"url": "http://127.0.0.1:9/hook"}`).must(t, http.StatusOK, nil)
	// Without a secret key endpoints cannot be created.
	nokey := newEnv(t, func(c *adminapi.Config) { c.Sealer = nil })
	nokey.do(http.MethodPost, "/v1/webhooks/endpoints", nokey.admin(), `{"url": "https://x.example.com/"}`).fail(t, http.StatusServiceUnavailable, "UNAVAILABLE")
}

// TestOutboxFeedRoute: the service role reads the tenant's events by cursor, with the types
// filter; bad parameters are 400; the feed of another tenant holds none of them.
func TestOutboxFeedRoute(t *testing.T) {
	e := newEnv(t)
	for _, u := range []string{"aff_a", "aff_b", "aff_c"} {
		affNew(t, e, u)
	}
	service := e.token(auth.RoleService, "wallet")
	var items []apishape.OutboxEvent
	after := ""
	for deadline := time.Now().Add(10 * time.Second); len(items) < 3 && time.Now().Before(deadline); {
		var page apishape.OutboxFeed
		e.do(http.MethodGet, "/v1/outbox?limit=2&types=affiliate.created&after="+after, service, nil).must(t, http.StatusOK, &page)
		items = append(items, page.Items...)
		after = page.NextCursor
	}
	if len(items) != 3 {
		t.Fatalf("read %d events", len(items))
	}
	for _, it := range items {
		if it.Type != outbox.AffiliateCreated || it.TenantID != e.tenant {
			t.Errorf("event %+v", it)
		}
	}
	var rest apishape.OutboxFeed
	e.do(http.MethodGet, "/v1/outbox?after="+after, service, nil).must(t, http.StatusOK, &rest)
	if len(rest.Items) != 0 {
		t.Fatalf("events after the last cursor: %+v", rest.Items)
	}
	for _, q := range []string{"after=nonsense", "types=reward.created,nope", "limit=0", "limit=501", "after=NToxOjs7MDsw"} {
		e.do(http.MethodGet, "/v1/outbox?"+q, service, nil).fail(t, http.StatusBadRequest, "VALIDATION_FAILED")
	}
	other := newEnv(t)
	var theirs apishape.OutboxFeed
	other.do(http.MethodGet, "/v1/outbox", other.token(auth.RoleService, "wallet"), nil).must(t, http.StatusOK, &theirs)
	if len(theirs.Items) != 0 {
		t.Fatalf("another tenant's feed shows %d events", len(theirs.Items))
	}
}

// TestWebhookTenantIsolation: every webhook route answers an admin of another tenant 404 for
// this tenant's endpoint and delivery ids, and its list shows none of them.
func TestWebhookTenantIsolation(t *testing.T) {
	e := newEnv(t)
	ep := hookEndpoint(t, e, map[string]any{"url": "https://wallet.example.com/hook"})
	id := ep.ID.String()
	var d apishape.WebhookDelivery
	e.do(http.MethodPost, "/v1/webhooks/endpoints/"+id+"/test", e.admin(), nil).must(t, http.StatusOK, &d)
	if d.EventType != outbox.WebhookTest || d.Status != outbox.DeliveryPending || d.EndpointID != ep.ID {
		t.Fatalf("test delivery = %+v", d)
	}
	other := newEnv(t)
	them := other.admin()
	since := `{"since": "` + time.Now().Add(-time.Hour).UTC().Format(time.RFC3339) + `"}`
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/v1/webhooks/endpoints/" + id, ""},
		{"PUT", "/v1/webhooks/endpoints/" + id, `{"url": "https://evil.example.com/"}`},
		{"DELETE", "/v1/webhooks/endpoints/" + id, ""},
		{"POST", "/v1/webhooks/endpoints/" + id + "/rotate-secret", ""},
		{"POST", "/v1/webhooks/endpoints/" + id + "/test", ""},
		{"GET", "/v1/webhooks/endpoints/" + id + "/deliveries", ""},
		{"POST", "/v1/webhooks/endpoints/" + id + "/replay", since},
		{"POST", "/v1/webhooks/deliveries/" + d.ID.String() + "/retry", ""},
	} {
		var body any
		if r.body != "" {
			body = r.body
		}
		other.do(r.method, r.path, them, body).fail(t, http.StatusNotFound, "NOT_FOUND")
	}
	var list apishape.List[apishape.WebhookEndpoint]
	other.do(http.MethodGet, "/v1/webhooks/endpoints", them, nil).must(t, http.StatusOK, &list)
	if list.Total != 0 {
		t.Fatalf("another tenant lists %d endpoints", list.Total)
	}
	// The owner still has it all.
	var ds apishape.List[apishape.WebhookDelivery]
	e.do(http.MethodGet, "/v1/webhooks/endpoints/"+id+"/deliveries?status=pending", e.admin(), nil).must(t, http.StatusOK, &ds)
	if ds.Total != 1 || ds.Items[0].ID != d.ID {
		t.Fatalf("deliveries = %+v", ds)
	}
}

// TestWebhookDeliveryActions: a replay queues the endpoint's events since a time (not before the
// retention), retrying a delivered delivery is 409 INVALID_TRANSITION, a bad status filter 400.
func TestWebhookDeliveryActions(t *testing.T) {
	e := newEnv(t)
	ep := hookEndpoint(t, e, map[string]any{"url": "https://wallet.example.com/hook", "event_types": []string{outbox.AffiliateCreated}})
	id := ep.ID.String()
	start := time.Now().Add(-time.Minute).UTC()
	affNew(t, e, "aff_replay_1")
	affNew(t, e, "aff_replay_2")
	var ds apishape.List[apishape.WebhookDelivery]
	e.do(http.MethodGet, "/v1/webhooks/endpoints/"+id+"/deliveries", e.admin(), nil).must(t, http.StatusOK, &ds)
	if ds.Total != 2 {
		t.Fatalf("deliveries after two affiliates: %+v", ds)
	}
	var rep apishape.WebhookReplay
	e.do(http.MethodPost, "/v1/webhooks/endpoints/"+id+"/replay", e.admin(),
		`{"since": "`+start.Format(time.RFC3339Nano)+`"}`).must(t, http.StatusOK, &rep)
	if rep.Queued != 2 || rep.EndpointID != ep.ID {
		t.Fatalf("replay = %+v", rep)
	}
	e.do(http.MethodPost, "/v1/webhooks/endpoints/"+id+"/replay", e.admin(),
		`{"since": "2000-01-01T00:00:00Z"}`).fail(t, http.StatusBadRequest, "VALIDATION_FAILED")
	e.do(http.MethodPost, "/v1/webhooks/endpoints/"+id+"/replay", e.admin(), `{}`).fail(t, http.StatusBadRequest, "VALIDATION_FAILED")
	e.do(http.MethodGet, "/v1/webhooks/endpoints/"+id+"/deliveries?status=lost", e.admin(), nil).fail(t, http.StatusBadRequest, "VALIDATION_FAILED")
	// A delivered delivery cannot be retried.
	if _, err := e.store.DB().Exec(`UPDATE webhook_deliveries SET status = 'delivered' WHERE id = $1`, ds.Items[0].ID); err != nil {
		t.Fatal(err)
	}
	e.do(http.MethodPost, "/v1/webhooks/deliveries/"+ds.Items[0].ID.String()+"/retry", e.admin(), nil).fail(t, http.StatusConflict, "INVALID_TRANSITION")
	var retried apishape.WebhookDelivery
	e.do(http.MethodPost, "/v1/webhooks/deliveries/"+ds.Items[1].ID.String()+"/retry", e.admin(), nil).must(t, http.StatusOK, &retried)
	if retried.Status != outbox.DeliveryPending || retried.NextAttemptAt == nil {
		t.Fatalf("retried = %+v", retried)
	}
}

// TestRiskFactsPublished: a held apply publishes referral.created then referral.held; a
// rejecting review publishes referral.reviewed and referral.status_changed.
func TestRiskFactsPublished(t *testing.T) {
	e := newEnv(t)
	admin := e.admin()
	e.do(http.MethodPost, "/v1/referral/codes", e.token(auth.RolePlayer, "alice"), map[string]any{"code": "ALICE1"},
		adminapi.DeviceIDHeader, "phone-1").must(t, 200, nil)
	held := e.do(http.MethodPost, "/v1/referral/apply-code", e.token(auth.RolePlayer, "bob"), map[string]any{"code": "ALICE1"},
		adminapi.DeviceIDHeader, "phone-1").must(t, 200, nil).obj(t)["id"].(string)
	e.do(http.MethodPut, "/v1/referral/referrals/"+held+"/review", admin, map[string]any{"decision": "reject"}).must(t, 200, nil)
	service := e.token(auth.RoleService, "wallet")
	var types []string
	var last map[string]any
	after := ""
	for deadline := time.Now().Add(10 * time.Second); len(types) < 4 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		var page struct {
			Items []struct {
				Type string         `json:"type"`
				Data map[string]any `json:"data"`
			} `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		e.do(http.MethodGet, "/v1/outbox?types=referral.created,referral.held,referral.reviewed,referral.status_changed&after="+after,
			service, nil).must(t, http.StatusOK, &page)
		for _, it := range page.Items {
			types = append(types, it.Type)
			last = it.Data
		}
		after = page.NextCursor
	}
	want := []string{outbox.ReferralCreated, outbox.ReferralHeld, outbox.ReferralReviewed, outbox.ReferralStatusChanged}
	if strings.Join(types, ",") != strings.Join(want, ",") {
		t.Fatalf("types = %v, want %v", types, want)
	}
	if last["id"] != held || last["status"] != "rejected" {
		t.Fatalf("status_changed data = %v", last)
	}
}
