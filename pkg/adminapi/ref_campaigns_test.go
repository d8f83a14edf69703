package adminapi_test

import (
	"bytes"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/phoenix-referral/phoenix/pkg/auth"
)

func TestRefCampaignCRUD(t *testing.T) {
	e := newEnv(t)
	path := "/v1/referral/campaigns"

	created := e.do(http.MethodPost, path, e.admin(), refCampaignBody())
	var c refCampaign
	created.must(t, 200, &c)
	if c.ID == "" || c.TenantID != e.tenant || c.Name != "Welcome Bonus Campaign" || c.QualifyingEvent != "deposit.completed" ||
		!c.Active || c.CreatedAt == "" || c.CreatedAt != c.UpdatedAt {
		t.Fatalf("created campaign = %+v", c)
	}
	if string(c.QualifyingFilter) != `{"amount":{"gte":1000}}` {
		t.Errorf("qualifying_filter = %s", c.QualifyingFilter)
	}
	if len(c.ReferrerRewards.Wallet) != 1 || c.ReferrerRewards.Wallet[0] != (refWallet{"points", 100}) ||
		len(c.RefereeRewards.Wallet) != 1 || c.RefereeRewards.Wallet[0] != (refWallet{"points", 50}) {
		t.Errorf("rewards = %+v / %+v", c.ReferrerRewards, c.RefereeRewards)
	}
	if c.StartsAt == nil || *c.StartsAt != "2026-01-01T00:00:00Z" || c.EndsAt == nil || *c.EndsAt != "2027-01-01T00:00:00.123456Z" {
		t.Errorf("window = %v..%v", c.StartsAt, c.EndsAt)
	}

	t.Run("create answer equals GET", func(t *testing.T) {
		got := e.do(http.MethodGet, path+"/"+c.ID, e.admin(), nil).must(t, 200, nil)
		if !bytes.Equal(got.Body, created.Body) {
			t.Fatalf("GET %s\nPOST %s", got.Body, created.Body)
		}
	})

	inactive := refCampaignBody()
	inactive["active"] = false
	var off refCampaign
	e.do(http.MethodPost, path, e.admin(), inactive).must(t, 200, &off)

	t.Run("list and active filter", func(t *testing.T) {
		var all refList[refCampaign]
		e.do(http.MethodGet, path, e.admin(), nil).must(t, 200, &all)
		if all.Total != 2 || len(all.Items) != 2 || all.Items[0].ID != off.ID || all.Items[1].ID != c.ID || all.Limit != 50 || all.Offset != 0 {
			t.Fatalf("list = %+v", all)
		}
		var act refList[refCampaign]
		e.do(http.MethodGet, path+"?active=true", e.admin(), nil).must(t, 200, &act)
		if act.Total != 1 || act.Items[0].ID != c.ID {
			t.Fatalf("active=true = %+v", act)
		}
		e.do(http.MethodGet, path+"?active=false", e.admin(), nil).must(t, 200, &act)
		if act.Total != 1 || act.Items[0].ID != off.ID {
			t.Fatalf("active=false = %+v", act)
		}
		var page refList[refCampaign]
		e.do(http.MethodGet, path+"?limit=1&offset=1", e.admin(), nil).must(t, 200, &page)
		if page.Total != 2 || len(page.Items) != 1 || page.Items[0].ID != c.ID || page.Limit != 1 || page.Offset != 1 {
			t.Fatalf("page = %+v", page)
		}
		for _, q := range []string{"?active=yes", "?limit=0", "?limit=101", "?offset=-1"} {
			e.do(http.MethodGet, path+q, e.admin(), nil).fail(t, 400, "VALIDATION_FAILED")
		}
	})

	t.Run("PUT replaces and ignores read-only fields", func(t *testing.T) {
		body := map[string]any{
			"name": "Renamed", "qualifying_event": "referral.applied",
			"id": "00000000-0000-0000-0000-000000000000", "tenant_id": "someone-else",
			"created_at": "2000-01-01T00:00:00Z", "updated_at": "2000-01-01T00:00:00Z",
		}
		var r refCampaign
		e.do(http.MethodPut, path+"/"+c.ID, e.admin(), body).must(t, 200, &r)
		if r.ID != c.ID || r.TenantID != e.tenant || r.CreatedAt != c.CreatedAt || r.UpdatedAt == c.UpdatedAt {
			t.Fatalf("identity changed: %+v", r)
		}
		if r.Name != "Renamed" || r.QualifyingEvent != "referral.applied" || string(r.QualifyingFilter) != "null" ||
			len(r.ReferrerRewards.Wallet) != 0 || len(r.RefereeRewards.Wallet) != 0 || !r.Active || r.StartsAt != nil || r.EndsAt != nil {
			t.Fatalf("omitted fields did not take defaults: %+v", r)
		}
		got := e.do(http.MethodGet, path+"/"+c.ID, e.admin(), nil).must(t, 200, nil)
		var g refCampaign
		got.must(t, 200, &g)
		if g.Name != "Renamed" || g.UpdatedAt != r.UpdatedAt {
			t.Fatalf("GET after PUT = %+v", g)
		}
		// A client can send back exactly what it read.
		e.do(http.MethodPut, path+"/"+c.ID, e.admin(), got.Body).must(t, 200, nil)
		e.do(http.MethodPut, path+"/"+c.ID, e.admin(), map[string]any{"name": ""}).fail(t, 400, "VALIDATION_FAILED")
		e.do(http.MethodPut, path+"/00000000-0000-0000-0000-000000000001", e.admin(), refCampaignBody()).fail(t, 404, "NOT_FOUND")
	})

	t.Run("POST rejects read-only fields", func(t *testing.T) {
		for _, f := range []string{"id", "tenant_id", "created_at", "updated_at"} {
			body := refCampaignBody()
			body[f] = "x"
			eb := e.do(http.MethodPost, path, e.admin(), body).fail(t, 400, "VALIDATION_FAILED")
			if eb.Error.Fields[f] == "" {
				t.Errorf("%s: fields = %v", f, eb.Error.Fields)
			}
		}
	})

	t.Run("other tenant and malformed ids are 404", func(t *testing.T) {
		other := newEnv(t)
		for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
			other.do(m, path+"/"+c.ID, other.admin(), refCampaignBody()).fail(t, 404, "NOT_FOUND")
			e.do(m, path+"/not-a-uuid", e.admin(), refCampaignBody()).fail(t, 404, "NOT_FOUND")
		}
		var l refList[refCampaign]
		other.do(http.MethodGet, path, other.admin(), nil).must(t, 200, &l)
		if l.Total != 0 {
			t.Fatalf("other tenant sees %d campaigns", l.Total)
		}
	})

	t.Run("DELETE hides", func(t *testing.T) {
		r := e.do(http.MethodDelete, path+"/"+off.ID, e.admin(), nil).must(t, 204, nil)
		if len(r.Body) != 0 {
			t.Fatalf("DELETE body = %q", r.Body)
		}
		e.do(http.MethodGet, path+"/"+off.ID, e.admin(), nil).fail(t, 404, "NOT_FOUND")
		e.do(http.MethodDelete, path+"/"+off.ID, e.admin(), nil).fail(t, 404, "NOT_FOUND")
		e.do(http.MethodPut, path+"/"+off.ID, e.admin(), refCampaignBody()).fail(t, 404, "NOT_FOUND")
		var l refList[refCampaign]
		e.do(http.MethodGet, path, e.admin(), nil).must(t, 200, &l)
		if l.Total != 1 || l.Items[0].ID != c.ID {
			t.Fatalf("list after delete = %+v", l)
		}
	})
}

func TestRefCampaignValidation(t *testing.T) {
	e := newEnv(t)
	with := func(k string, v any) map[string]any {
		b := refCampaignBody()
		if v == nil {
			delete(b, k)
		} else {
			b[k] = v
		}
		return b
	}
	wallet := func(items ...any) map[string]any { return map[string]any{"wallet": items} }
	tests := []struct {
		name  string
		body  any
		field string
	}{
		{"name missing", with("name", nil), "name"},
		{"name empty", with("name", ""), "name"},
		{"name too long", with("name", strings.Repeat("é", 201)), "name"},
		{"name not a string", with("name", 5), "name"},
		{"event missing", with("qualifying_event", nil), "qualifying_event"},
		{"event upper case", with("qualifying_event", "Deposit"), "qualifying_event"},
		{"event too long", with("qualifying_event", strings.Repeat("a", 101)), "qualifying_event"},
		{"filter in not an array", with("qualifying_filter", map[string]any{"amount": map[string]any{"in": 5}}), "qualifying_filter"},
		{"filter empty path segment", with("qualifying_filter", map[string]any{"a..b": 1}), "qualifying_filter"},
		{"filter not an object", with("qualifying_filter", []any{1}), "qualifying_filter"},
		{"rewards not an object", with("referrer_rewards", []any{}), "referrer_rewards"},
		{"rewards unknown key", with("referrer_rewards", map[string]any{"wallet": []any{}, "bonus": 1}), "referrer_rewards.bonus"},
		{"wallet not an array", with("referee_rewards", map[string]any{"wallet": 5}), "referee_rewards.wallet"},
		{"amount zero", with("referrer_rewards", wallet(map[string]any{"currency_id": "p", "amount": 0})), "referrer_rewards.wallet[0].amount"},
		{"amount negative", with("referrer_rewards", wallet(map[string]any{"currency_id": "p", "amount": -5})), "referrer_rewards.wallet[0].amount"},
		{"amount fractional", with("referrer_rewards", wallet(map[string]any{"currency_id": "p", "amount": 1.5})), "referrer_rewards.wallet[0].amount"},
		{"amount string", with("referrer_rewards", wallet(map[string]any{"currency_id": "p", "amount": "10"})), "referrer_rewards.wallet[0].amount"},
		{"amount missing", with("referrer_rewards", wallet(map[string]any{"currency_id": "p"})), "referrer_rewards.wallet[0].amount"},
		{"currency empty", with("referee_rewards", wallet(map[string]any{"currency_id": "", "amount": 1})), "referee_rewards.wallet[0].currency_id"},
		{"currency too long", with("referee_rewards", wallet(map[string]any{"currency_id": strings.Repeat("c", 65), "amount": 1})), "referee_rewards.wallet[0].currency_id"},
		{"currency twice", with("referee_rewards", wallet(map[string]any{"currency_id": "p", "amount": 1}, map[string]any{"currency_id": "p", "amount": 2})), "referee_rewards.wallet[1].currency_id"},
		{"wallet entry unknown key", with("referee_rewards", wallet(map[string]any{"currency_id": "p", "amount": 1, "x": 1})), "referee_rewards.wallet[0].x"},
		{"starts after ends", with("starts_at", "2027-06-01T00:00:00Z"), "ends_at"},
		{"starts equals ends", with("starts_at", "2027-01-01T00:00:00.123456Z"), "ends_at"},
		{"bad time", with("starts_at", "yesterday"), "starts_at"},
		{"active not bool", with("active", "yes"), "active"},
		{"unknown field", with("colour", "red"), "colour"},
		{"not an object", `[1, 2]`, "body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eb := e.do(http.MethodPost, "/v1/referral/campaigns", e.admin(), tt.body).fail(t, 400, "VALIDATION_FAILED")
			if eb.Error.Fields[tt.field] == "" {
				t.Fatalf("fields = %v, want %q", eb.Error.Fields, tt.field)
			}
		})
	}
	e.do(http.MethodPost, "/v1/referral/campaigns", e.admin(), `{"name": `).fail(t, 400, "INVALID_JSON")
	var l refList[refCampaign]
	e.do(http.MethodGet, "/v1/referral/campaigns", e.admin(), nil).must(t, 200, &l)
	if l.Total != 0 {
		t.Fatalf("invalid bodies wrote %d campaigns", l.Total)
	}
	// Minimal valid body: only the required fields.
	var c refCampaign
	e.do(http.MethodPost, "/v1/referral/campaigns", e.admin(), map[string]any{"name": "x", "qualifying_event": "a"}).must(t, 200, &c)
	if !c.Active || string(c.QualifyingFilter) != "null" || c.ReferrerRewards.Wallet == nil || len(c.ReferrerRewards.Wallet) != 0 {
		t.Fatalf("defaults = %+v", c)
	}
}

func TestRefCampaignRoles(t *testing.T) {
	e := newEnv(t)
	c := refCreateCampaign(t, e)
	for _, role := range []auth.Role{auth.RolePlayer, auth.RoleService} {
		tok := e.token(role, "u1")
		e.do(http.MethodPost, "/v1/referral/campaigns", tok, refCampaignBody()).fail(t, 403, "FORBIDDEN")
		e.do(http.MethodGet, "/v1/referral/campaigns", tok, nil).fail(t, 403, "FORBIDDEN")
		e.do(http.MethodGet, "/v1/referral/campaigns/"+c.ID, tok, nil).fail(t, 403, "FORBIDDEN")
		e.do(http.MethodPut, "/v1/referral/campaigns/"+c.ID, tok, refCampaignBody()).fail(t, 403, "FORBIDDEN")
		e.do(http.MethodDelete, "/v1/referral/campaigns/"+c.ID, tok, nil).fail(t, 403, "FORBIDDEN")
	}
	e.do(http.MethodGet, "/v1/referral/campaigns", "", nil).fail(t, 401, "UNAUTHORIZED")
	super := e.tokenFor(auth.Principal{UserID: "root", Role: auth.RoleSuperAdmin})
	var l refList[refCampaign]
	e.do(http.MethodGet, "/v1/referral/campaigns?tenant_id="+e.tenant, super, nil).must(t, 200, &l)
	if l.Total != 1 {
		t.Fatalf("super admin sees %d campaigns", l.Total)
	}
}

func TestRefCampaignIdempotency(t *testing.T) {
	e := newEnv(t)
	path := "/v1/referral/campaigns"
	first := e.do(http.MethodPost, path, e.admin(), refCampaignBody(), "Idempotency-Key", "k-1").must(t, 200, nil)
	again := e.do(http.MethodPost, path, e.admin(), refCampaignBody(), "Idempotency-Key", "k-1").must(t, 200, nil)
	if again.Header.Get("Idempotent-Replay") != "true" || !bytes.Equal(first.Body, again.Body) {
		t.Fatalf("replay: header %q, bodies\n%s\n%s", again.Header.Get("Idempotent-Replay"), first.Body, again.Body)
	}
	other := refCampaignBody()
	other["name"] = "Other"
	e.do(http.MethodPost, path, e.admin(), other, "Idempotency-Key", "k-1").fail(t, 409, "IDEMPOTENCY_KEY_REUSED")
	// Another caller's key is its own.
	var c2, c1 refCampaign
	e.do(http.MethodPost, path, e.token(auth.RoleTenantAdmin, "admin_2"), refCampaignBody(), "Idempotency-Key", "k-1").must(t, 200, &c2)
	first.must(t, 200, &c1)
	if c1.ID == c2.ID {
		t.Fatal("another caller got the first caller's replay")
	}
	var l refList[refCampaign]
	e.do(http.MethodGet, path, e.admin(), nil).must(t, 200, &l)
	if l.Total != 2 {
		t.Fatalf("total = %d, want 2", l.Total)
	}
}

func TestRefCampaignIdempotencyConcurrent(t *testing.T) {
	e := newEnv(t)
	const n = 20
	bodies := make([][]byte, n)
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.do(http.MethodPost, "/v1/referral/campaigns", e.admin(), refCampaignBody(), "Idempotency-Key", "same-key")
			bodies[i], statuses[i] = r.Body, r.Status
		}()
	}
	wg.Wait()
	for i := range n {
		if statuses[i] != 200 || !bytes.Equal(bodies[i], bodies[0]) {
			t.Fatalf("answer %d: %d %s (first %s)", i, statuses[i], bodies[i], bodies[0])
		}
	}
	var l refList[refCampaign]
	e.do(http.MethodGet, "/v1/referral/campaigns", e.admin(), nil).must(t, 200, &l)
	if l.Total != 1 {
		t.Fatalf("%d campaigns created, want 1", l.Total)
	}
}
