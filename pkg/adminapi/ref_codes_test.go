package adminapi_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

func TestRefPlayerCodes(t *testing.T) {
	e := newEnv(t)
	alice := e.token(auth.RolePlayer, "alice")
	path := "/v1/referral/codes"

	var gen refCode
	e.do(http.MethodPost, path, alice, nil).must(t, 200, &gen)
	if len(gen.Code) != referral.GeneratedCodeLength || strings.Trim(gen.Code, referral.CodeAlphabet) != "" {
		t.Fatalf("generated code %q", gen.Code)
	}
	if gen.OwnerUserID == nil || *gen.OwnerUserID != "alice" || gen.UsageLimit != nil || gen.Uses != 0 || !gen.Active ||
		gen.CampaignID != nil || gen.ExpiresAt != nil || gen.TenantID != e.tenant || gen.ReferralURL != nil {
		t.Fatalf("generated = %+v", gen)
	}

	t.Run("generated code is idempotent", func(t *testing.T) {
		var again refCode
		e.do(http.MethodPost, path, alice, map[string]any{"usage_limit": 5}).must(t, 200, &again)
		if again.ID != gen.ID || again.Code != gen.Code || again.UsageLimit != nil || again.UpdatedAt != gen.UpdatedAt {
			t.Fatalf("second generated code %+v, want %+v", again, gen)
		}
	})

	t.Run("explicit code normalised and unique", func(t *testing.T) {
		var c refCode
		e.do(http.MethodPost, path, alice, map[string]any{"code": " alice-2026 ", "usage_limit": 3}).must(t, 200, &c)
		if c.Code != "ALICE-2026" || c.UsageLimit == nil || *c.UsageLimit != 3 {
			t.Fatalf("explicit = %+v", c)
		}
		e.do(http.MethodPost, path, e.token(auth.RolePlayer, "bob"), map[string]any{"code": "Alice-2026"}).fail(t, 409, "CODE_TAKEN")
		// Codes are unique per tenant only.
		other := newEnv(t)
		other.do(http.MethodPost, path, other.token(auth.RolePlayer, "bob"), map[string]any{"code": "ALICE-2026"}).must(t, 200, nil)
	})

	t.Run("validation", func(t *testing.T) {
		for _, body := range []any{
			map[string]any{"code": "ab"},
			map[string]any{"code": strings.Repeat("A", 33)},
			map[string]any{"code": "with space"},
			map[string]any{"code": ""},
			map[string]any{"code": 12345},
			map[string]any{"usage_limit": 0},
			map[string]any{"usage_limit": 1_000_001},
			map[string]any{"usage_limit": 2.5},
			map[string]any{"campaign_id": uuid.NewString()},
			map[string]any{"owner_user_id": "mallory"},
			map[string]any{"uses": 3},
			map[string]any{"id": uuid.NewString()},
		} {
			e.do(http.MethodPost, path, alice, body).fail(t, 400, "VALIDATION_FAILED")
		}
		e.do(http.MethodPost, path, alice, `{"code":`).fail(t, 400, "INVALID_JSON")
		var c refCode
		e.do(http.MethodPost, path, alice, map[string]any{"code": "UNLIMITED1", "usage_limit": nil}).must(t, 200, &c)
		if c.UsageLimit != nil {
			t.Fatalf("usage_limit null = %v", *c.UsageLimit)
		}
		e.do(http.MethodPost, path, alice, map[string]any{"code": "MAXLIMIT", "usage_limit": 1_000_000}).must(t, 200, nil)
	})

	t.Run("players use no admin route", func(t *testing.T) {
		e.do(http.MethodGet, path, alice, nil).fail(t, 403, "FORBIDDEN")
		e.do(http.MethodGet, path+"/"+gen.ID, alice, nil).fail(t, 403, "FORBIDDEN")
		e.do(http.MethodPatch, path+"/"+gen.ID, alice, map[string]any{"active": false}).fail(t, 403, "FORBIDDEN")
		e.do(http.MethodDelete, path+"/"+gen.ID, alice, nil).fail(t, 403, "FORBIDDEN")
		e.do(http.MethodPost, path, e.token(auth.RoleService, "svc"), nil).fail(t, 403, "FORBIDDEN")
	})
}

func TestRefPlayerCodeLimit(t *testing.T) {
	e := newEnv(t)
	tok := e.token(auth.RolePlayer, "carol")
	path := "/v1/referral/codes"
	var gen refCode
	e.do(http.MethodPost, path, tok, nil).must(t, 200, &gen)
	for i := range 9 {
		e.do(http.MethodPost, path, tok, map[string]any{"code": fmt.Sprintf("CAROL%d", i)}).must(t, 200, nil)
	}
	e.do(http.MethodPost, path, tok, map[string]any{"code": "CAROL10"}).fail(t, 422, "CODE_LIMIT_REACHED")
	// The generated code is returned, not created, so the cap does not apply to it.
	var again refCode
	e.do(http.MethodPost, path, tok, nil).must(t, 200, &again)
	if again.ID != gen.ID {
		t.Fatalf("generated code not reused at the cap")
	}
	// Admin codes and affiliate codes owned by the player do not count; deactivating one frees a slot.
	refAdminCode(t, e, map[string]any{"owner_user_id": "carol"})
	var l refList[refCode]
	e.do(http.MethodGet, path+"?owner_user_id=carol&limit=100", e.admin(), nil).must(t, 200, &l)
	if l.Total != 11 {
		t.Fatalf("carol owns %d codes, want 11", l.Total)
	}
	e.do(http.MethodPatch, path+"/"+gen.ID, e.admin(), map[string]any{"active": false}).must(t, 200, nil)
	var fresh refCode
	e.do(http.MethodPost, path, tok, nil).must(t, 200, &fresh)
	if fresh.ID == gen.ID {
		t.Fatal("an inactive generated code was returned")
	}
	e.do(http.MethodPost, path, tok, map[string]any{"code": "CAROL11"}).fail(t, 422, "CODE_LIMIT_REACHED")
}

func TestRefPlayerCodeLimitConcurrent(t *testing.T) {
	e := newEnv(t)
	tok := e.token(auth.RolePlayer, "dave")
	const n = 25
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = e.do(http.MethodPost, "/v1/referral/codes", tok, map[string]any{"code": fmt.Sprintf("DAVE%02d", i)}).Status
		}()
	}
	wg.Wait()
	ok, limited := 0, 0
	for _, s := range statuses {
		switch s {
		case 200:
			ok++
		case 422:
			limited++
		default:
			t.Fatalf("unexpected status %d", s)
		}
	}
	if ok != 10 || limited != n-10 {
		t.Fatalf("%d created, %d limited; want 10 and %d", ok, limited, n-10)
	}

	// Concurrent requests for a generated code all get the same one.
	eve := e.token(auth.RolePlayer, "eve")
	ids := make([]string, 10)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c refCode
			e.do(http.MethodPost, "/v1/referral/codes", eve, nil).must(t, 200, &c)
			ids[i] = c.ID
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("concurrent generated codes differ: %v", ids)
		}
	}
}

func TestRefAdminCodes(t *testing.T) {
	e := newEnv(t)
	camp := refCreateCampaign(t, e)
	path := "/v1/referral/codes"
	body := map[string]any{"code": "promo-1", "usage_limit": 100, "campaign_id": camp.ID, "owner_user_id": "u_1",
		"expires_at": "2030-01-01T10:00:00.5Z", "active": false}
	created := e.do(http.MethodPost, path, e.admin(), body).must(t, 200, nil)
	var c refCode
	created.must(t, 200, &c)
	if c.Code != "PROMO-1" || c.UsageLimit == nil || *c.UsageLimit != 100 || c.CampaignID == nil || *c.CampaignID != camp.ID ||
		c.OwnerUserID == nil || *c.OwnerUserID != "u_1" || c.ExpiresAt == nil || *c.ExpiresAt != "2030-01-01T10:00:00.5Z" || c.Active {
		t.Fatalf("created = %+v", c)
	}
	got := e.do(http.MethodGet, path+"/"+c.ID, e.admin(), nil).must(t, 200, nil)
	if !bytes.Equal(got.Body, created.Body) {
		t.Fatalf("GET %s\nPOST %s", got.Body, created.Body)
	}

	t.Run("defaults and generated code", func(t *testing.T) {
		a := refAdminCode(t, e, map[string]any{})
		b := refAdminCode(t, e, map[string]any{})
		if a.Code == b.Code || len(a.Code) != 8 || a.OwnerUserID != nil || a.UsageLimit != nil || !a.Active || a.CampaignID != nil {
			t.Fatalf("admin generated codes %+v %+v", a, b)
		}
	})

	t.Run("validation", func(t *testing.T) {
		otherCamp := refCreateCampaign(t, newEnv(t))
		deleted := refCreateCampaign(t, e)
		e.do(http.MethodDelete, "/v1/referral/campaigns/"+deleted.ID, e.admin(), nil).must(t, 204, nil)
		for name, tc := range map[string]struct {
			body  map[string]any
			field string
		}{
			"campaign of another tenant": {map[string]any{"campaign_id": otherCamp.ID}, "campaign_id"},
			"deleted campaign":           {map[string]any{"campaign_id": deleted.ID}, "campaign_id"},
			"malformed campaign":         {map[string]any{"campaign_id": "nope"}, "campaign_id"},
			"owner empty":                {map[string]any{"owner_user_id": ""}, "owner_user_id"},
			"owner too long":             {map[string]any{"owner_user_id": strings.Repeat("u", 129)}, "owner_user_id"},
			"usage_limit zero":           {map[string]any{"usage_limit": 0}, "usage_limit"},
			"bad expiry":                 {map[string]any{"expires_at": "soon"}, "expires_at"},
			"uses is read-only":          {map[string]any{"uses": 1}, "uses"},
			"referral_url is read-only":  {map[string]any{"referral_url": "x"}, "referral_url"},
			"bad code":                   {map[string]any{"code": "no!"}, "code"},
		} {
			eb := e.do(http.MethodPost, path, e.admin(), tc.body).fail(t, 400, "VALIDATION_FAILED")
			if eb.Error.Fields[tc.field] == "" {
				t.Errorf("%s: fields = %v", name, eb.Error.Fields)
			}
		}
		e.do(http.MethodPost, path, e.admin(), map[string]any{"code": "PROMO-1"}).fail(t, 409, "CODE_TAKEN")
	})

	t.Run("list filters", func(t *testing.T) {
		var l refList[refCode]
		e.do(http.MethodGet, path+"?campaign_id="+camp.ID, e.admin(), nil).must(t, 200, &l)
		if l.Total != 1 || l.Items[0].ID != c.ID {
			t.Fatalf("campaign filter = %+v", l)
		}
		e.do(http.MethodGet, path+"?owner_user_id=u_1", e.admin(), nil).must(t, 200, &l)
		if l.Total != 1 || l.Items[0].ID != c.ID {
			t.Fatalf("owner filter = %+v", l)
		}
		e.do(http.MethodGet, path+"?active=false", e.admin(), nil).must(t, 200, &l)
		if l.Total != 1 || l.Items[0].ID != c.ID {
			t.Fatalf("active filter = %+v", l)
		}
		e.do(http.MethodGet, path+"?active=true", e.admin(), nil).must(t, 200, &l)
		if l.Total != 2 {
			t.Fatalf("active=true total = %d", l.Total)
		}
		e.do(http.MethodGet, path+"?limit=1", e.admin(), nil).must(t, 200, &l)
		if l.Total != 3 || len(l.Items) != 1 {
			t.Fatalf("page = %+v", l)
		}
		for _, q := range []string{"?campaign_id=x", "?active=1", "?limit=500"} {
			e.do(http.MethodGet, path+q, e.admin(), nil).fail(t, 400, "VALIDATION_FAILED")
		}
	})

	t.Run("PUT replaces", func(t *testing.T) {
		var r refCode
		e.do(http.MethodPut, path+"/"+c.ID, e.admin(), map[string]any{"uses": 99, "referral_url": "x", "id": uuid.NewString(),
			"created_at": "2000-01-01T00:00:00Z"}).must(t, 200, &r)
		if r.ID != c.ID || r.Code != "PROMO-1" || r.UsageLimit != nil || r.CampaignID != nil || r.OwnerUserID != nil ||
			r.ExpiresAt != nil || !r.Active || r.Uses != 0 || r.CreatedAt != c.CreatedAt || r.UpdatedAt == c.UpdatedAt {
			t.Fatalf("PUT with defaults = %+v", r)
		}
		put := e.do(http.MethodPut, path+"/"+c.ID, e.admin(), map[string]any{"code": "promo-1", "usage_limit": 5,
			"campaign_id": camp.ID, "owner_user_id": "u_2", "active": false}).must(t, 200, nil)
		put.must(t, 200, &r)
		if r.UsageLimit == nil || *r.UsageLimit != 5 || r.OwnerUserID == nil || *r.OwnerUserID != "u_2" || r.Active {
			t.Fatalf("PUT = %+v", r)
		}
		// Sending back what was read is accepted.
		e.do(http.MethodPut, path+"/"+c.ID, e.admin(), put.Body).must(t, 200, nil)
		eb := e.do(http.MethodPut, path+"/"+c.ID, e.admin(), map[string]any{"code": "RENAMED"}).fail(t, 400, "VALIDATION_FAILED")
		if eb.Error.Fields["code"] == "" {
			t.Fatalf("fields = %v", eb.Error.Fields)
		}
		e.do(http.MethodPut, path+"/"+uuid.NewString(), e.admin(), map[string]any{}).fail(t, 404, "NOT_FOUND")
	})

	t.Run("PATCH", func(t *testing.T) {
		var r refCode
		e.do(http.MethodPatch, path+"/"+c.ID, e.admin(), map[string]any{"active": true, "usage_limit": nil}).must(t, 200, &r)
		if !r.Active || r.UsageLimit != nil || r.CampaignID == nil || r.OwnerUserID == nil {
			t.Fatalf("PATCH active+usage_limit = %+v", r)
		}
		e.do(http.MethodPatch, path+"/"+c.ID, e.admin(), map[string]any{"expires_at": "2031-01-01T00:00:00Z", "campaign_id": nil}).must(t, 200, &r)
		if r.ExpiresAt == nil || *r.ExpiresAt != "2031-01-01T00:00:00Z" || r.CampaignID != nil || !r.Active {
			t.Fatalf("PATCH expires+campaign = %+v", r)
		}
		e.do(http.MethodPatch, path+"/"+c.ID, e.admin(), map[string]any{"expires_at": nil, "campaign_id": camp.ID, "usage_limit": 7}).must(t, 200, &r)
		if r.ExpiresAt != nil || r.CampaignID == nil || *r.CampaignID != camp.ID || *r.UsageLimit != 7 {
			t.Fatalf("PATCH back = %+v", r)
		}
		e.do(http.MethodPatch, path+"/"+c.ID, e.admin(), map[string]any{}).must(t, 200, &r)
		for _, body := range []map[string]any{
			{"uses": 1}, {"code": "X1X"}, {"owner_user_id": "x"}, {"active": nil}, {"active": "no"},
			{"usage_limit": 0}, {"campaign_id": uuid.NewString()}, {"expires_at": 5},
		} {
			e.do(http.MethodPatch, path+"/"+c.ID, e.admin(), body).fail(t, 400, "VALIDATION_FAILED")
		}
		// usage_limit may not go below the uses already made.
		refApply(e, "referee_1", "PROMO-1").must(t, 200, nil)
		refApply(e, "referee_2", "PROMO-1").must(t, 200, nil)
		eb := e.do(http.MethodPatch, path+"/"+c.ID, e.admin(), map[string]any{"usage_limit": 1}).fail(t, 400, "VALIDATION_FAILED")
		if eb.Error.Fields["usage_limit"] == "" {
			t.Fatalf("fields = %v", eb.Error.Fields)
		}
		e.do(http.MethodPut, path+"/"+c.ID, e.admin(), map[string]any{"usage_limit": 1}).fail(t, 400, "VALIDATION_FAILED")
		e.do(http.MethodPatch, path+"/"+c.ID, e.admin(), map[string]any{"usage_limit": 2}).must(t, 200, &r)
		if r.Uses != 2 || *r.UsageLimit != 2 {
			t.Fatalf("after applies = %+v", r)
		}
	})

	t.Run("stats", func(t *testing.T) {
		var st struct {
			Code        refCode `json:"code"`
			TotalClaims int     `json:"total_claims"`
			Claims      []struct {
				ReferralID string `json:"referral_id"`
				RefereeID  string `json:"referee_id"`
				Status     string `json:"status"`
				ClaimedAt  string `json:"claimed_at"`
			} `json:"claims"`
		}
		e.do(http.MethodGet, path+"/"+c.ID+"/stats", e.admin(), nil).must(t, 200, &st)
		if st.Code.ID != c.ID || st.TotalClaims != 2 || len(st.Claims) != 2 || st.Claims[0].RefereeID != "referee_2" ||
			st.Claims[1].RefereeID != "referee_1" || st.Claims[0].Status != "pending" || st.Claims[0].ClaimedAt == "" {
			t.Fatalf("stats = %+v", st)
		}
		e.do(http.MethodGet, path+"/"+c.ID+"/stats?limit=1&offset=1", e.admin(), nil).must(t, 200, &st)
		if st.TotalClaims != 2 || len(st.Claims) != 1 || st.Claims[0].RefereeID != "referee_1" {
			t.Fatalf("stats page = %+v", st)
		}
		e.do(http.MethodGet, path+"/"+c.ID+"/stats?limit=0", e.admin(), nil).fail(t, 400, "VALIDATION_FAILED")
		e.do(http.MethodGet, path+"/"+uuid.NewString()+"/stats", e.admin(), nil).fail(t, 404, "NOT_FOUND")
	})

	t.Run("other tenant and malformed ids are 404", func(t *testing.T) {
		o := newEnv(t)
		for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			o.do(m, path+"/"+c.ID, o.admin(), map[string]any{}).fail(t, 404, "NOT_FOUND")
			e.do(m, path+"/12345", e.admin(), map[string]any{}).fail(t, 404, "NOT_FOUND")
		}
		o.do(http.MethodGet, path+"/"+c.ID+"/stats", o.admin(), nil).fail(t, 404, "NOT_FOUND")
	})

	t.Run("DELETE frees the code", func(t *testing.T) {
		e.do(http.MethodDelete, path+"/"+c.ID, e.admin(), nil).must(t, 204, nil)
		e.do(http.MethodGet, path+"/"+c.ID, e.admin(), nil).fail(t, 404, "NOT_FOUND")
		e.do(http.MethodDelete, path+"/"+c.ID, e.admin(), nil).fail(t, 404, "NOT_FOUND")
		e.do(http.MethodPatch, path+"/"+c.ID, e.admin(), map[string]any{"active": true}).fail(t, 404, "NOT_FOUND")
		refApply(e, "referee_3", "PROMO-1").fail(t, 404, "CODE_NOT_FOUND")
		n := refAdminCode(t, e, map[string]any{"code": "promo-1"})
		if n.ID == c.ID || n.Uses != 0 {
			t.Fatalf("re-created code = %+v", n)
		}
		// Referrals made with the deleted code keep pointing at it.
		var l refList[refReferral]
		e.do(http.MethodGet, "/v1/referral/referrals?referee_id=referee_1", e.admin(), nil).must(t, 200, &l)
		if l.Total != 1 || l.Items[0].CodeID != c.ID {
			t.Fatalf("referral after code delete = %+v", l)
		}
	})
}

func TestRefCodeReferralURL(t *testing.T) {
	e := newEnv(t, refURLTemplate("https://play.example.com/join?ref={code}"))
	c := refPlayerCode(t, e, "frank", map[string]any{"code": "frank1"})
	if c.ReferralURL == nil || *c.ReferralURL != "https://play.example.com/join?ref=FRANK1" {
		t.Fatalf("referral_url = %v", c.ReferralURL)
	}
	var g refCode
	e.do(http.MethodGet, "/v1/referral/codes/"+c.ID, e.admin(), nil).must(t, 200, &g)
	if g.ReferralURL == nil || *g.ReferralURL != *c.ReferralURL {
		t.Fatalf("GET referral_url = %v", g.ReferralURL)
	}
	var l refList[refCode]
	e.do(http.MethodGet, "/v1/referral/codes", e.admin(), nil).must(t, 200, &l)
	if l.Items[0].ReferralURL == nil {
		t.Fatal("list lacks referral_url")
	}
}

func TestRefAffiliateCodes(t *testing.T) {
	e := newEnv(t)
	id := uuid.New()
	refExec(t, e, `INSERT INTO referral_codes (id, tenant_id, code, owner_user_id, active, source, created_at, updated_at)
		VALUES ($1, $2, 'PARTNER001', 'partner_001', true, 'affiliate', now(), now())`, id, e.tenant)
	path := "/v1/referral/codes/" + id.String()
	var c refCode
	e.do(http.MethodGet, path, e.admin(), nil).must(t, 200, &c)
	if c.Code != "PARTNER001" || *c.OwnerUserID != "partner_001" {
		t.Fatalf("affiliate code = %+v", c)
	}
	e.do(http.MethodPatch, path, e.admin(), map[string]any{"active": false, "usage_limit": 50}).must(t, 200, &c)
	if c.Active || *c.UsageLimit != 50 {
		t.Fatalf("patched affiliate code = %+v", c)
	}
	// PUT keeps the owner when omitted and refuses another.
	e.do(http.MethodPut, path, e.admin(), map[string]any{"active": true}).must(t, 200, &c)
	if c.OwnerUserID == nil || *c.OwnerUserID != "partner_001" || !c.Active || c.UsageLimit != nil {
		t.Fatalf("PUT affiliate code = %+v", c)
	}
	e.do(http.MethodPut, path, e.admin(), map[string]any{"owner_user_id": "someone"}).fail(t, 400, "VALIDATION_FAILED")
	e.do(http.MethodDelete, path, e.admin(), nil).fail(t, 409, "INVALID_TRANSITION")
	e.do(http.MethodGet, path, e.admin(), nil).must(t, 200, nil)
	// An affiliate's code does not count against the player's own cap.
	tok := e.token(auth.RolePlayer, "partner_001")
	for i := range 10 {
		e.do(http.MethodPost, "/v1/referral/codes", tok, map[string]any{"code": fmt.Sprintf("P1X%d", i)}).must(t, 200, nil)
	}
	e.do(http.MethodPost, "/v1/referral/codes", tok, nil).fail(t, 422, "CODE_LIMIT_REACHED")
}
