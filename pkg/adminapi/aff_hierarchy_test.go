package adminapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func affCheckDeprecated(t *testing.T, r *resp, successor string) {
	t.Helper()
	if r.Header.Get("Deprecation") != "true" || r.Header.Get("Link") != "<"+successor+`>; rel="successor-version"` {
		t.Fatalf("deprecation headers: Deprecation=%q Link=%q", r.Header.Get("Deprecation"), r.Header.Get("Link"))
	}
}

func TestAffHierarchyPolicy(t *testing.T) {
	e := newEnv(t)
	tok := e.admin()
	e.do(http.MethodGet, "/v1/affiliate/hierarchy", tok, nil).fail(t, 404, "NOT_FOUND")
	affCheckDeprecated(t, e.do(http.MethodGet, "/v1/affiliate/hierarchy-config", tok, nil), "/v1/affiliate/hierarchy")

	r := e.do(http.MethodPut, "/v1/affiliate/hierarchy", tok, `{"max_depth": 3, "level_rates": [0.1, 0.05, 0.025]}`).must(t, 200, nil)
	if !strings.Contains(string(r.Body), `"max_depth":3,"level_rates":[0.1,0.05,0.025],"active":true,"updated_at":"`) {
		t.Fatalf("PUT body %s", r.Body)
	}
	g := e.do(http.MethodGet, "/v1/affiliate/hierarchy", tok, nil).must(t, 200, nil)
	if string(g.Body) != string(r.Body) {
		t.Fatalf("GET differs from PUT:\n%s\n%s", g.Body, r.Body)
	}
	// Idempotent upsert; a GET body can be sent back (updated_at, tenant_id ignored).
	m := g.obj(t)
	m["active"] = false
	var p struct {
		MaxDepth   int       `json:"max_depth"`
		LevelRates []float64 `json:"level_rates"`
		Active     bool      `json:"active"`
	}
	e.do(http.MethodPut, "/v1/affiliate/hierarchy", tok, m).must(t, 200, &p)
	if p.MaxDepth != 3 || p.Active || len(p.LevelRates) != 3 {
		t.Fatalf("after second PUT %+v", p)
	}
	a := e.do(http.MethodPut, "/v1/affiliate/hierarchy-config", tok, `{"max_depth": 0, "level_rates": []}`).must(t, 200, &p)
	affCheckDeprecated(t, a, "/v1/affiliate/hierarchy")
	if p.MaxDepth != 0 || !p.Active || len(p.LevelRates) != 0 {
		t.Fatalf("alias PUT %+v", p)
	}
	a = e.do(http.MethodGet, "/v1/affiliate/hierarchy-config", tok, nil).must(t, 200, &p)
	affCheckDeprecated(t, a, "/v1/affiliate/hierarchy")
	// Sum exactly 1 is allowed.
	e.do(http.MethodPut, "/v1/affiliate/hierarchy", tok, `{"max_depth": 3, "level_rates": [0.333333, 0.333333, 0.333334]}`).must(t, 200, nil)

	e.do(http.MethodPost, "/v1/affiliate/hierarchy", tok, `{}`).fail(t, 405, "METHOD_NOT_ALLOWED")
	e.do(http.MethodDelete, "/v1/affiliate/hierarchy", tok, nil).fail(t, 405, "METHOD_NOT_ALLOWED")
	bad := map[string]string{
		"missing depth":  `{"level_rates": []}`,
		"missing rates":  `{"max_depth": 0}`,
		"depth 11":       `{"max_depth": 11, "level_rates": [0,0,0,0,0,0,0,0,0,0,0]}`,
		"negative depth": `{"max_depth": -1, "level_rates": []}`,
		"length":         `{"max_depth": 2, "level_rates": [0.1]}`,
		"sum over 1":     `{"max_depth": 3, "level_rates": [0.333333, 0.333333, 0.333335]}`,
		"rate over 1":    `{"max_depth": 1, "level_rates": [1.1]}`,
		"null rate":      `{"max_depth": 1, "level_rates": [null]}`,
		"rates object":   `{"max_depth": 1, "level_rates": {"1": 0.1}}`,
		"unknown":        `{"max_depth": 0, "level_rates": [], "levels": 2}`,
	}
	for name, body := range bad {
		t.Run(name, func(t *testing.T) {
			e.do(http.MethodPut, "/v1/affiliate/hierarchy", tok, body).fail(t, 400, "VALIDATION_FAILED")
		})
	}
	// Another tenant still has none.
	newEnv(t).do(http.MethodGet, "/v1/affiliate/hierarchy", newEnv(t).admin(), nil).fail(t, 404, "NOT_FOUND")
}

func TestAffUpline(t *testing.T) {
	e := newEnv(t)
	tok := e.admin()
	// a ─ b ─ c ─ d ; x
	a, b, c, d, x := affNew(t, e, "h_a"), affNew(t, e, "h_b"), affNew(t, e, "h_c"), affNew(t, e, "h_d"), affNew(t, e, "h_x")
	if got := affMove(t, e, b.ID, a.ID); got.ParentAffiliateID == nil || *got.ParentAffiliateID != a.ID || got.ID != b.ID {
		t.Fatalf("move answer %+v", got)
	}
	affMove(t, e, c.ID, b.ID)
	affMove(t, e, d.ID, c.ID)
	up := func(id string) string { return "/v1/affiliates/" + id + "/hierarchy" }

	t.Run("cycles", func(t *testing.T) {
		e.do(http.MethodPut, up(a.ID), tok, map[string]any{"parent_affiliate_id": a.ID}).fail(t, 422, "HIERARCHY_CYCLE")
		e.do(http.MethodPut, up(c.ID), tok, map[string]any{"parent_affiliate_id": d.ID}).fail(t, 422, "HIERARCHY_CYCLE")
		e.do(http.MethodPut, up(a.ID), tok, map[string]any{"parent_affiliate_id": d.ID}).fail(t, 422, "HIERARCHY_CYCLE")
		e.do(http.MethodPut, up(b.ID), tok, map[string]any{"parent_affiliate_id": c.ID}).fail(t, 422, "HIERARCHY_CYCLE")
		affCheckTree(t, e)
	})
	t.Run("errors", func(t *testing.T) {
		e.do(http.MethodPut, up(a.ID), tok, map[string]any{}).fail(t, 400, "VALIDATION_FAILED")
		e.do(http.MethodPut, up(a.ID), tok, ``).fail(t, 400, "VALIDATION_FAILED")
		e.do(http.MethodPut, up(a.ID), tok, map[string]any{"parent_affiliate_id": "nope"}).fail(t, 400, "VALIDATION_FAILED")
		e.do(http.MethodPut, up(a.ID), tok, map[string]any{"parent_affiliate_id": x.ID, "extra": 1}).fail(t, 400, "VALIDATION_FAILED")
		e.do(http.MethodPut, up(a.ID), tok, map[string]any{"parent_affiliate_id": uuid.NewString()}).fail(t, 404, "NOT_FOUND")
		e.do(http.MethodPut, up(uuid.NewString()), tok, map[string]any{"parent_affiliate_id": x.ID}).fail(t, 404, "NOT_FOUND")
		e.do(http.MethodPut, up("bad"), tok, map[string]any{"parent_affiliate_id": x.ID}).fail(t, 404, "NOT_FOUND")
		e.do(http.MethodDelete, up(uuid.NewString()), tok, nil).fail(t, 404, "NOT_FOUND")
		o := newEnv(t)
		foreign := affNew(t, o, "h_foreign")
		e.do(http.MethodPut, up(a.ID), tok, map[string]any{"parent_affiliate_id": foreign.ID}).fail(t, 404, "NOT_FOUND")
		e.do(http.MethodPut, up(foreign.ID), tok, map[string]any{"parent_affiliate_id": a.ID}).fail(t, 404, "NOT_FOUND")
		e.do(http.MethodPost, up(a.ID), tok, map[string]any{}).fail(t, 405, "METHOD_NOT_ALLOWED")
		// A deleted affiliate is no parent.
		gone := affNew(t, e, "h_gone")
		e.do(http.MethodDelete, "/v1/affiliates/"+gone.ID, tok, nil).must(t, 204, nil)
		e.do(http.MethodPut, up(a.ID), tok, map[string]any{"parent_affiliate_id": gone.ID}).fail(t, 404, "NOT_FOUND")
	})
	t.Run("moving a subtree takes the downline along", func(t *testing.T) {
		moved := affMove(t, e, b.ID, x.ID) // x ─ b ─ c ─ d
		if again := affMove(t, e, b.ID, x.ID); again.UpdatedAt != moved.UpdatedAt {
			t.Fatalf("moving to the current parent rewrote the affiliate: %s → %s", moved.UpdatedAt, again.UpdatedAt)
		}
		var l affList
		e.do(http.MethodGet, "/v1/affiliates/"+x.ID+"/downline?depth=50", tok, nil).must(t, 200, &l)
		if l.Total != 3 || l.Items[0].ID != b.ID || l.Items[1].ID != c.ID || l.Items[2].ID != d.ID || l.Items[2].Level != 3 {
			t.Fatalf("x's downline %+v", l)
		}
		e.do(http.MethodGet, "/v1/affiliates/"+a.ID+"/downline?depth=50", tok, nil).must(t, 200, &l)
		if l.Total != 0 || len(l.Items) != 0 {
			t.Fatalf("a's downline %+v", l)
		}
		// Now a may go under d (no cycle any more), and x under a's old position is fine.
		affMove(t, e, a.ID, d.ID)
		affCheckTree(t, e)
		e.do(http.MethodPut, up(x.ID), tok, map[string]any{"parent_affiliate_id": a.ID}).fail(t, 422, "HIERARCHY_CYCLE")
	})
	t.Run("null and DELETE make a root; the alias behaves the same", func(t *testing.T) {
		if got := affMove(t, e, c.ID, ""); got.ParentAffiliateID != nil {
			t.Fatalf("null parent: %+v", got)
		}
		r := e.do(http.MethodPut, "/v1/affiliates/"+c.ID+"/parent", tok, map[string]any{"parent_affiliate_id": b.ID})
		affCheckDeprecated(t, r, "/v1/affiliates/"+c.ID+"/hierarchy")
		var got affObj
		r.must(t, 200, &got)
		if got.ParentAffiliateID == nil || *got.ParentAffiliateID != b.ID {
			t.Fatalf("alias move %+v", got)
		}
		e.do(http.MethodPut, "/v1/affiliates/"+c.ID+"/parent", tok, map[string]any{"parent_affiliate_id": c.ID}).fail(t, 422, "HIERARCHY_CYCLE")
		e.do(http.MethodDelete, up(c.ID), tok, nil).must(t, 204, nil)
		e.do(http.MethodGet, "/v1/affiliates/"+c.ID, tok, nil).must(t, 200, &got)
		if got.ParentAffiliateID != nil {
			t.Fatalf("after DELETE: %+v", got)
		}
		e.do(http.MethodDelete, up(c.ID), tok, nil).must(t, 204, nil) // already a root
		affCheckTree(t, e)
	})
}

func TestAffDownline(t *testing.T) {
	e := newEnv(t)
	tok := e.admin()
	// root has 3 children; child 0 has 2 children; grandchild 0 has 1 child.
	root := affNew(t, e, "dl_root")
	var kids, grand []affObj
	for i := range 3 {
		k := affNew(t, e, fmt.Sprintf("dl_kid%d", i))
		affMove(t, e, k.ID, root.ID)
		kids = append(kids, k)
	}
	for i := range 2 {
		g := affNew(t, e, fmt.Sprintf("dl_grand%d", i))
		affMove(t, e, g.ID, kids[0].ID)
		grand = append(grand, g)
	}
	great := affNew(t, e, "dl_great")
	affMove(t, e, great.ID, grand[0].ID)
	path := "/v1/affiliates/" + root.ID + "/downline"

	var l affList
	e.do(http.MethodGet, path, tok, nil).must(t, 200, &l)
	if l.Total != 3 || l.Limit != 50 || l.Offset != 0 || len(l.Items) != 3 {
		t.Fatalf("default depth 1: %+v", l)
	}
	for i, it := range l.Items {
		if it.ID != kids[i].ID || it.Level != 1 || it.ParentAffiliateID == nil || *it.ParentAffiliateID != root.ID {
			t.Fatalf("item %d: %+v", i, it)
		}
	}
	e.do(http.MethodGet, path+"?depth=2", tok, nil).must(t, 200, &l)
	if l.Total != 5 || l.Items[3].ID != grand[0].ID || l.Items[4].Level != 2 {
		t.Fatalf("depth 2: %+v", l)
	}
	e.do(http.MethodGet, path+"?depth=50&limit=2&offset=4", tok, nil).must(t, 200, &l)
	if l.Total != 6 || len(l.Items) != 2 || l.Items[0].ID != grand[1].ID || l.Items[1].ID != great.ID || l.Items[1].Level != 3 || l.Limit != 2 || l.Offset != 4 {
		t.Fatalf("deep page: %+v", l)
	}
	// A page past the end still carries the total.
	e.do(http.MethodGet, path+"?depth=50&offset=100", tok, nil).must(t, 200, &l)
	if l.Total != 6 || len(l.Items) != 0 || l.Offset != 100 {
		t.Fatalf("deep page past the end: %+v", l)
	}
	e.do(http.MethodGet, path+"?offset=3", tok, nil).must(t, 200, &l)
	if l.Total != 3 || len(l.Items) != 0 || l.Items == nil {
		t.Fatalf("children page past the end: %+v", l)
	}
	e.do(http.MethodGet, "/v1/affiliates/"+great.ID+"/downline?depth=5", tok, nil).must(t, 200, &l)
	if l.Total != 0 || len(l.Items) != 0 {
		t.Fatalf("leaf downline: %+v", l)
	}
	// Levels are relative to the node asked about.
	e.do(http.MethodGet, "/v1/affiliates/"+kids[0].ID+"/downline?depth=3", tok, nil).must(t, 200, &l)
	if l.Total != 3 || l.Items[2].ID != great.ID || l.Items[2].Level != 2 {
		t.Fatalf("from a child: %+v", l)
	}
	// Items are full affiliate objects plus level.
	r := e.do(http.MethodGet, path+"?limit=1", tok, nil).must(t, 200, nil)
	for _, k := range []string{`"affiliate_code":`, `"tier_id":`, `"converted_referrals":`, `"level":1`} {
		if !strings.Contains(string(r.Body), k) {
			t.Fatalf("downline item lacks %s: %s", k, r.Body)
		}
	}
	for _, q := range []string{"depth=0", "depth=51", "depth=x", "limit=0", "offset=-1"} {
		e.do(http.MethodGet, path+"?"+q, tok, nil).fail(t, 400, "VALIDATION_FAILED")
	}
	e.do(http.MethodGet, "/v1/affiliates/"+uuid.NewString()+"/downline", tok, nil).fail(t, 404, "NOT_FOUND")
	e.do(http.MethodGet, path, newEnv(t).admin(), nil).fail(t, 404, "NOT_FOUND")
}
