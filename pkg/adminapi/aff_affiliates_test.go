package adminapi_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"testing"

	"github.com/google/uuid"

	"github.com/phoenix-referral/phoenix/pkg/auth"
)

func TestAffAffiliateCreateAndRead(t *testing.T) {
	e := newEnv(t)
	tok := e.admin()

	t.Run("explicit code is normalised and registered as a referral code", func(t *testing.T) {
		r := e.do(http.MethodPost, "/v1/affiliates", tok, map[string]any{"user_id": "partner_001", "affiliate_code": "partner001"})
		var a affObj
		r.must(t, 200, &a)
		if a.AffiliateCode != "PARTNER001" || a.Status != "pending" || a.UserID != "partner_001" || a.TenantID != e.tenant {
			t.Fatalf("created %+v", a)
		}
		if a.ParentAffiliateID != nil || a.TierID != nil || a.TierOverrideID != nil || a.ConvertedReferrals != 0 || a.RefereeRevenue != 0 {
			t.Fatalf("defaults wrong: %+v", a)
		}
		for _, k := range []string{"id", "tenant_id", "user_id", "affiliate_code", "status", "parent_affiliate_id", "tier_id",
			"tier_override_id", "converted_referrals", "referee_revenue", "created_at", "updated_at"} {
			if _, ok := r.obj(t)[k]; !ok {
				t.Errorf("response lacks %q", k)
			}
		}
		g := e.do(http.MethodGet, "/v1/affiliates/"+a.ID, tok, nil).must(t, 200, nil)
		if string(g.Body) != string(r.Body) {
			t.Fatalf("GET differs from POST:\n%s\n%s", g.Body, r.Body)
		}
		var code struct {
			Owner  string `db:"owner_user_id"`
			Source string `db:"source"`
			Limit  *int   `db:"usage_limit"`
			Active bool   `db:"active"`
		}
		if err := e.store.DB().GetContext(context.Background(), &code, `
			SELECT c.owner_user_id, c.source, c.usage_limit, c.active FROM referral_codes c
			JOIN affiliates a ON a.code_id = c.id WHERE a.id = $1 AND c.code = 'PARTNER001' AND c.deleted_at IS NULL`, a.ID); err != nil {
			t.Fatalf("affiliate code not registered: %v", err)
		}
		if code.Owner != "partner_001" || code.Source != "affiliate" || code.Limit != nil || !code.Active {
			t.Fatalf("registered code %+v", code)
		}
	})

	t.Run("generated code", func(t *testing.T) {
		var a affObj
		e.do(http.MethodPost, "/v1/affiliates", tok, map[string]any{"user_id": "gen_1", "status": "active"}).must(t, 200, &a)
		if !regexp.MustCompile(`^[23456789ABCDEFGHJKLMNPQRSTUVWXYZ]{8}$`).MatchString(a.AffiliateCode) || a.Status != "active" {
			t.Fatalf("generated %+v", a)
		}
	})

	t.Run("conflicts", func(t *testing.T) {
		e.do(http.MethodPost, "/v1/affiliates", tok, map[string]any{"user_id": "partner_001"}).fail(t, 409, "AFFILIATE_EXISTS")
		e.do(http.MethodPost, "/v1/affiliates", tok, map[string]any{"user_id": "other", "affiliate_code": "Partner001"}).fail(t, 409, "CODE_TAKEN")
		// A player's code blocks the string too.
		if _, err := e.store.DB().Exec(`INSERT INTO referral_codes (id, tenant_id, code, owner_user_id, active, source, created_at, updated_at)
			VALUES ($1, $2, 'PLAYERCODE', 'p1', true, 'player', now(), now())`, uuid.New(), e.tenant); err != nil {
			t.Fatal(err)
		}
		e.do(http.MethodPost, "/v1/affiliates", tok, map[string]any{"user_id": "other", "affiliate_code": "playercode"}).fail(t, 409, "CODE_TAKEN")
		// Nothing of the failed attempts was written.
		var n int
		e.store.DB().Get(&n, `SELECT count(*) FROM affiliates WHERE tenant_id = $1 AND user_id = 'other'`, e.tenant)
		if n != 0 {
			t.Fatalf("failed create left %d affiliates", n)
		}
	})

	t.Run("validation", func(t *testing.T) {
		other := uuid.NewString()
		bodies := map[string]any{
			"missing user_id":      map[string]any{"status": "active"},
			"empty user_id":        map[string]any{"user_id": ""},
			"long user_id":         map[string]any{"user_id": fmt.Sprintf("%0129d", 1)},
			"bad status":           map[string]any{"user_id": "v1", "status": "gone"},
			"bad code":             map[string]any{"user_id": "v1", "affiliate_code": "a!"},
			"short code":           map[string]any{"user_id": "v1", "affiliate_code": "ab"},
			"parent is read-only":  map[string]any{"user_id": "v1", "parent_affiliate_id": other},
			"tier_id is read-only": map[string]any{"user_id": "v1", "tier_id": nil},
			"counter is read-only": map[string]any{"user_id": "v1", "converted_referrals": 3},
			"unknown field":        map[string]any{"user_id": "v1", "nickname": "x"},
			"unknown tier":         map[string]any{"user_id": "v1", "tier_override_id": other},
			"malformed tier":       map[string]any{"user_id": "v1", "tier_override_id": "nope"},
			"wrong type":           map[string]any{"user_id": 12},
			"not an object":        []int{1},
		}
		for name, body := range bodies {
			t.Run(name, func(t *testing.T) {
				e.do(http.MethodPost, "/v1/affiliates", tok, body).fail(t, 400, "VALIDATION_FAILED")
			})
		}
		e.do(http.MethodPost, "/v1/affiliates", tok, `{"user_id": `).fail(t, 400, "INVALID_JSON")
	})

	t.Run("tier of another tenant is not a tier", func(t *testing.T) {
		o := newEnv(t)
		tier := affTier(t, o, map[string]any{"name": "gold", "commission_rate": 0.1})
		e.do(http.MethodPost, "/v1/affiliates", tok, map[string]any{"user_id": "v2", "tier_override_id": tier}).fail(t, 400, "VALIDATION_FAILED")
	})

	t.Run("missing, malformed and foreign ids are 404", func(t *testing.T) {
		e.do(http.MethodGet, "/v1/affiliates/"+uuid.NewString(), tok, nil).fail(t, 404, "NOT_FOUND")
		e.do(http.MethodGet, "/v1/affiliates/not-a-uuid", tok, nil).fail(t, 404, "NOT_FOUND")
		o := newEnv(t)
		foreign := affNew(t, o, "foreign")
		e.do(http.MethodGet, "/v1/affiliates/"+foreign.ID, tok, nil).fail(t, 404, "NOT_FOUND")
		e.do(http.MethodPut, "/v1/affiliates/"+foreign.ID, tok, map[string]any{}).fail(t, 404, "NOT_FOUND")
		e.do(http.MethodDelete, "/v1/affiliates/"+foreign.ID, tok, nil).fail(t, 404, "NOT_FOUND")
	})

	t.Run("roles", func(t *testing.T) {
		e.do(http.MethodPost, "/v1/affiliates", e.token(auth.RolePlayer, "p"), map[string]any{"user_id": "x"}).fail(t, 403, "FORBIDDEN")
		e.do(http.MethodGet, "/v1/affiliates", "", nil).fail(t, 401, "UNAUTHORIZED")
		e.do(http.MethodPatch, "/v1/affiliates/"+uuid.NewString(), tok, nil).fail(t, 405, "METHOD_NOT_ALLOWED")
	})
}

func TestAffAffiliateReplace(t *testing.T) {
	e := newEnv(t)
	tok := e.admin()
	var a affObj
	e.do(http.MethodPost, "/v1/affiliates", tok, map[string]any{"user_id": "u_put", "affiliate_code": "PUTCODE", "status": "active"}).must(t, 200, &a)
	parent := affNew(t, e, "u_parent")
	affMove(t, e, a.ID, parent.ID)
	path := "/v1/affiliates/" + a.ID

	t.Run("omitted fields take their defaults, code and parent kept", func(t *testing.T) {
		var got affObj
		e.do(http.MethodPut, path, tok, map[string]any{}).must(t, 200, &got)
		if got.Status != "pending" || got.AffiliateCode != "PUTCODE" || got.UserID != "u_put" ||
			got.ParentAffiliateID == nil || *got.ParentAffiliateID != parent.ID {
			t.Fatalf("after PUT {}: %+v", got)
		}
	})
	t.Run("a GET body can be sent back", func(t *testing.T) {
		r := e.do(http.MethodGet, path, tok, nil).must(t, 200, nil)
		m := r.obj(t)
		m["status"] = "suspended"
		m["parent_affiliate_id"] = nil // read-only on PUT: ignored
		m["affiliate_code"] = "putcode"
		var got affObj
		e.do(http.MethodPut, path, tok, m).must(t, 200, &got)
		if got.Status != "suspended" || got.ParentAffiliateID == nil || got.AffiliateCode != "PUTCODE" {
			t.Fatalf("after PUT of GET body: %+v", got)
		}
		if g := e.do(http.MethodGet, path, tok, nil); string(g.Body) != string(e.do(http.MethodGet, path, tok, nil).Body) {
			t.Fatal("GET not stable")
		}
	})
	t.Run("code and user cannot change", func(t *testing.T) {
		eb := e.do(http.MethodPut, path, tok, map[string]any{"affiliate_code": "OTHER1"}).fail(t, 400, "VALIDATION_FAILED")
		if eb.Error.Fields["affiliate_code"] == "" {
			t.Fatalf("fields %v", eb.Error.Fields)
		}
		eb = e.do(http.MethodPut, path, tok, map[string]any{"user_id": "someone_else"}).fail(t, 400, "VALIDATION_FAILED")
		if eb.Error.Fields["user_id"] == "" {
			t.Fatalf("fields %v", eb.Error.Fields)
		}
		e.do(http.MethodPut, path, tok, map[string]any{"user_id": "u_put", "status": "active"}).must(t, 200, nil)
	})
	t.Run("override must be a tier of the tenant", func(t *testing.T) {
		e.do(http.MethodPut, path, tok, map[string]any{"tier_override_id": uuid.NewString()}).fail(t, 400, "VALIDATION_FAILED")
		tier := affTier(t, e, map[string]any{"name": "pinned", "commission_rate": 0.2})
		var got affObj
		e.do(http.MethodPut, path, tok, map[string]any{"tier_override_id": tier}).must(t, 200, &got)
		if got.TierOverrideID == nil || *got.TierOverrideID != tier || got.TierID == nil || *got.TierID != tier {
			t.Fatalf("override not applied: %+v", got)
		}
	})
}

func TestAffAffiliateList(t *testing.T) {
	e := newEnv(t)
	tok := e.admin()
	root := affNew(t, e, "l_root")
	var kids []affObj
	for i := range 3 {
		var a affObj
		e.do(http.MethodPost, "/v1/affiliates", tok, map[string]any{"user_id": fmt.Sprintf("l_kid%d", i)}).must(t, 200, &a)
		affMove(t, e, a.ID, root.ID)
		kids = append(kids, a)
	}
	var l affList
	e.do(http.MethodGet, "/v1/affiliates", tok, nil).must(t, 200, &l)
	if l.Total != 4 || len(l.Items) != 4 || l.Limit != 50 || l.Offset != 0 {
		t.Fatalf("list %+v", l)
	}
	// Newest first.
	if l.Items[0].ID != kids[2].ID || l.Items[3].ID != root.ID {
		t.Fatalf("order: %s … %s", l.Items[0].UserID, l.Items[3].UserID)
	}
	e.do(http.MethodGet, "/v1/affiliates?status=pending", tok, nil).must(t, 200, &l)
	if l.Total != 3 {
		t.Fatalf("status=pending total %d", l.Total)
	}
	e.do(http.MethodGet, "/v1/affiliates?parent_affiliate_id="+root.ID+"&limit=2&offset=1", tok, nil).must(t, 200, &l)
	if l.Total != 3 || len(l.Items) != 2 || l.Items[0].ID != kids[1].ID || l.Limit != 2 || l.Offset != 1 {
		t.Fatalf("parent filter page %+v", l)
	}
	e.do(http.MethodGet, "/v1/affiliates?user_id=l_kid0", tok, nil).must(t, 200, &l)
	if l.Total != 1 || l.Items[0].ID != kids[0].ID {
		t.Fatalf("user filter %+v", l)
	}
	for _, q := range []string{"status=bogus", "parent_affiliate_id=xyz", "limit=0", "limit=101", "offset=-1"} {
		e.do(http.MethodGet, "/v1/affiliates?"+q, tok, nil).fail(t, 400, "VALIDATION_FAILED")
	}
}

func TestAffAffiliateDelete(t *testing.T) {
	e := newEnv(t)
	tok := e.admin()
	// top ─ mid ─ kid ─ grandkid ; mid ─ kid2
	top := affNew(t, e, "d_top")
	var mid affObj
	e.do(http.MethodPost, "/v1/affiliates", tok, map[string]any{"user_id": "d_mid", "affiliate_code": "MIDCODE"}).must(t, 200, &mid)
	kid, kid2, grandkid := affNew(t, e, "d_kid"), affNew(t, e, "d_kid2"), affNew(t, e, "d_grandkid")
	affMove(t, e, mid.ID, top.ID)
	affMove(t, e, kid.ID, mid.ID)
	affMove(t, e, kid2.ID, mid.ID)
	affMove(t, e, grandkid.ID, kid.ID)

	e.do(http.MethodDelete, "/v1/affiliates/"+mid.ID, tok, nil).must(t, 204, nil)
	e.do(http.MethodGet, "/v1/affiliates/"+mid.ID, tok, nil).fail(t, 404, "NOT_FOUND")
	e.do(http.MethodDelete, "/v1/affiliates/"+mid.ID, tok, nil).fail(t, 404, "NOT_FOUND")

	var got affObj
	e.do(http.MethodGet, "/v1/affiliates/"+kid.ID, tok, nil).must(t, 200, &got)
	if got.ParentAffiliateID == nil || *got.ParentAffiliateID != top.ID {
		t.Fatalf("child not moved up: %+v", got)
	}
	var l affList
	e.do(http.MethodGet, "/v1/affiliates/"+top.ID+"/downline?depth=50", tok, nil).must(t, 200, &l)
	levels := map[string]int{}
	for _, it := range l.Items {
		levels[it.ID] = it.Level
	}
	if l.Total != 3 || levels[kid.ID] != 1 || levels[kid2.ID] != 1 || levels[grandkid.ID] != 2 {
		t.Fatalf("downline after splice: %+v", l)
	}
	affCheckTree(t, e)
	var anc []string
	var raw string
	if err := e.store.DB().Get(&raw, `SELECT ancestors::text FROM affiliates WHERE id = $1`, grandkid.ID); err != nil {
		t.Fatal(err)
	}
	anc = append(anc, raw)
	if want := "{" + top.ID + "," + kid.ID + "}"; raw != want {
		t.Fatalf("grandchild path %s, want %s", raw, want)
	}

	// The code is deactivated and its string freed; the user may come back with a new id.
	var active bool
	if err := e.store.DB().Get(&active, `SELECT c.active FROM referral_codes c JOIN affiliates a ON a.code_id = c.id WHERE a.id = $1`, mid.ID); err != nil || active {
		t.Fatalf("code still active (%v)", err)
	}
	var again affObj
	e.do(http.MethodPost, "/v1/affiliates", tok, map[string]any{"user_id": "d_mid", "affiliate_code": "MIDCODE"}).must(t, 200, &again)
	if again.ID == mid.ID || again.ParentAffiliateID != nil {
		t.Fatalf("re-created %+v", again)
	}

	// Deleting a root makes its children roots.
	e.do(http.MethodDelete, "/v1/affiliates/"+top.ID, tok, nil).must(t, 204, nil)
	e.do(http.MethodGet, "/v1/affiliates/"+grandkid.ID, tok, nil).must(t, 200, &got)
	if got.ParentAffiliateID == nil || *got.ParentAffiliateID != kid.ID {
		t.Fatalf("grandchild's parent changed: %+v", got)
	}
	e.do(http.MethodGet, "/v1/affiliates/"+kid.ID, tok, nil).must(t, 200, &got)
	if got.ParentAffiliateID != nil {
		t.Fatalf("child of deleted root is not a root: %+v", got)
	}
	affCheckTree(t, e)
}

func TestAffEffectiveTier(t *testing.T) {
	e := newEnv(t)
	tok := e.admin()
	a := affNew(t, e, "tier_user")
	get := func() affObj {
		var got affObj
		e.do(http.MethodGet, "/v1/affiliates/"+a.ID, tok, nil).must(t, 200, &got)
		return got
	}
	if got := get(); got.TierID != nil {
		t.Fatalf("tier without tiers: %v", *got.TierID)
	}
	bronze := affTier(t, e, map[string]any{"name": "bronze", "commission_rate": 0.05, "priority": 1})
	if got := get(); got.TierID == nil || *got.TierID != bronze {
		t.Fatalf("new base tier not effective: %+v", got)
	}
	silver := affTier(t, e, map[string]any{"name": "silver", "commission_rate": 0.08, "min_referrals": 2, "priority": 2})
	affReferral(t, e, "tier_user", "converted")
	affReferral(t, e, "tier_user", "pending")
	affReferral(t, e, "tier_user", "rejected")
	if got := get(); got.ConvertedReferrals != 1 || *got.TierID != bronze {
		t.Fatalf("one conversion: %+v", got)
	}
	affReferral(t, e, "tier_user", "verified")
	if got := get(); got.ConvertedReferrals != 2 || *got.TierID != silver {
		t.Fatalf("two conversions: %+v", got)
	}
	// Raising silver's threshold drops the affiliate back at once.
	e.do(http.MethodPut, "/v1/affiliate/tiers/"+silver, tok, map[string]any{"name": "silver", "commission_rate": 0.08, "min_referrals": 3, "priority": 2}).must(t, 200, nil)
	if got := get(); *got.TierID != bronze {
		t.Fatalf("after raising silver: %+v", got)
	}
	// The list and the downline show the same effective tier.
	var l affList
	e.do(http.MethodGet, "/v1/affiliates?user_id=tier_user", tok, nil).must(t, 200, &l)
	if l.Items[0].TierID == nil || *l.Items[0].TierID != bronze || l.Items[0].ConvertedReferrals != 2 {
		t.Fatalf("list item %+v", l.Items[0])
	}
	// An override pins the tier; deleting the pinned tier clears the override.
	var got affObj
	e.do(http.MethodPut, "/v1/affiliates/"+a.ID, tok, map[string]any{"tier_override_id": silver, "status": "active"}).must(t, 200, &got)
	if got.TierOverrideID == nil || *got.TierOverrideID != silver || *got.TierID != silver {
		t.Fatalf("override: %+v", got)
	}
	other := affNew(t, e, "tier_user2")
	e.do(http.MethodPut, "/v1/affiliates/"+other.ID, tok, map[string]any{"tier_override_id": silver}).must(t, 200, nil)
	e.do(http.MethodDelete, "/v1/affiliate/tiers/"+silver, tok, nil).must(t, 204, nil)
	for _, id := range []string{a.ID, other.ID} {
		e.do(http.MethodGet, "/v1/affiliates/"+id, tok, nil).must(t, 200, &got)
		if got.TierOverrideID != nil || got.TierID == nil || *got.TierID != bronze {
			t.Fatalf("after deleting the pinned tier: %+v", got)
		}
	}
	e.do(http.MethodDelete, "/v1/affiliate/tiers/"+bronze, tok, nil).must(t, 204, nil)
	if got := get(); got.TierID != nil {
		t.Fatalf("tier after deleting every tier: %+v", got)
	}
}

func TestAffAffiliateIdempotentCreate(t *testing.T) {
	e := newEnv(t)
	body := map[string]any{"user_id": "idem_user"}
	first := e.do(http.MethodPost, "/v1/affiliates", e.admin(), body, "Idempotency-Key", "aff-key-1").must(t, 200, nil)
	again := e.do(http.MethodPost, "/v1/affiliates", e.admin(), body, "Idempotency-Key", "aff-key-1").must(t, 200, nil)
	if string(first.Body) != string(again.Body) || again.Header.Get("Idempotent-Replay") != "true" {
		t.Fatalf("replay differs: %s vs %s (%q)", first.Body, again.Body, again.Header.Get("Idempotent-Replay"))
	}
	e.do(http.MethodPost, "/v1/affiliates", e.admin(), map[string]any{"user_id": "other"}, "Idempotency-Key", "aff-key-1").fail(t, 409, "IDEMPOTENCY_KEY_REUSED")
	e.do(http.MethodPost, "/v1/affiliates", e.admin(), body).fail(t, 409, "AFFILIATE_EXISTS")
}
