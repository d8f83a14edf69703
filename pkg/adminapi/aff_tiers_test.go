package adminapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
)

type affTierObj struct {
	ID                string  `json:"id"`
	TenantID          string  `json:"tenant_id"`
	Name              string  `json:"name"`
	CommissionRate    float64 `json:"commission_rate"`
	MinReferrals      int64   `json:"min_referrals"`
	MinRefereeRevenue int64   `json:"min_referee_revenue"`
	Priority          int     `json:"priority"`
	CreatedAt         string  `json:"created_at"`
	UpdatedAt         string  `json:"updated_at"`
}

func TestAffTiersCRUD(t *testing.T) {
	e := newEnv(t)
	tok := e.admin()
	r := e.do(http.MethodPost, "/v1/affiliate/tiers", tok, `{"name": "Gold", "commission_rate": 0.123456, "min_referrals": 10, "min_referee_revenue": 50000, "priority": 3}`)
	var gold affTierObj
	r.must(t, 200, &gold)
	if gold.Name != "Gold" || gold.MinReferrals != 10 || gold.MinRefereeRevenue != 50000 || gold.Priority != 3 || gold.TenantID != e.tenant {
		t.Fatalf("created %+v", gold)
	}
	if !strings.Contains(string(r.Body), `"commission_rate":0.123456,`) {
		t.Fatalf("rate not exact: %s", r.Body)
	}
	g := e.do(http.MethodGet, "/v1/affiliate/tiers/"+gold.ID, tok, nil).must(t, 200, nil)
	if string(g.Body) != string(r.Body) {
		t.Fatalf("GET differs from POST:\n%s\n%s", g.Body, r.Body)
	}

	// Defaults: thresholds and priority 0.
	var base affTierObj
	e.do(http.MethodPost, "/v1/affiliate/tiers", tok, map[string]any{"name": "Base", "commission_rate": 1}).must(t, 200, &base)
	if base.MinReferrals != 0 || base.MinRefereeRevenue != 0 || base.Priority != 0 || base.CommissionRate != 1 {
		t.Fatalf("defaults %+v", base)
	}
	var mid affTierObj
	e.do(http.MethodPost, "/v1/affiliate/tiers", tok, map[string]any{"name": "Mid", "commission_rate": 0.07, "priority": -1}).must(t, 200, &mid)

	var l struct {
		Items []affTierObj `json:"items"`
		Total int          `json:"total"`
	}
	e.do(http.MethodGet, "/v1/affiliate/tiers", tok, nil).must(t, 200, &l)
	if l.Total != 3 || l.Items[0].ID != gold.ID || l.Items[1].ID != base.ID || l.Items[2].ID != mid.ID {
		t.Fatalf("not ordered by priority desc: %+v", l.Items)
	}
	e.do(http.MethodGet, "/v1/affiliate/tiers?limit=1&offset=2", tok, nil).must(t, 200, &l)
	if l.Total != 3 || len(l.Items) != 1 || l.Items[0].ID != mid.ID {
		t.Fatalf("page %+v", l)
	}

	// PUT replaces: omitted fields take their defaults; read-only fields are ignored.
	var put affTierObj
	e.do(http.MethodPut, "/v1/affiliate/tiers/"+gold.ID, tok, map[string]any{"id": uuid.NewString(), "name": "Gold+",
		"commission_rate": 0.2, "created_at": "2000-01-01T00:00:00Z"}).must(t, 200, &put)
	if put.ID != gold.ID || put.Name != "Gold+" || put.CommissionRate != 0.2 || put.MinReferrals != 0 || put.Priority != 0 || put.CreatedAt != gold.CreatedAt {
		t.Fatalf("after PUT %+v", put)
	}

	e.do(http.MethodDelete, "/v1/affiliate/tiers/"+gold.ID, tok, nil).must(t, 204, nil)
	e.do(http.MethodGet, "/v1/affiliate/tiers/"+gold.ID, tok, nil).fail(t, 404, "NOT_FOUND")
	e.do(http.MethodPut, "/v1/affiliate/tiers/"+gold.ID, tok, map[string]any{"name": "x", "commission_rate": 0}).fail(t, 404, "NOT_FOUND")
	e.do(http.MethodDelete, "/v1/affiliate/tiers/"+gold.ID, tok, nil).fail(t, 404, "NOT_FOUND")
	e.do(http.MethodGet, "/v1/affiliate/tiers/nope", tok, nil).fail(t, 404, "NOT_FOUND")
	o := newEnv(t)
	e.do(http.MethodGet, "/v1/affiliate/tiers/"+base.ID, o.admin(), nil).fail(t, 404, "NOT_FOUND")
}

func TestAffTiersValidation(t *testing.T) {
	e := newEnv(t)
	bodies := map[string]string{
		"missing name":       `{"commission_rate": 0.1}`,
		"empty name":         `{"name": " ", "commission_rate": 0.1}`,
		"long name":          `{"name": "` + strings.Repeat("n", 101) + `", "commission_rate": 0.1}`,
		"missing rate":       `{"name": "x"}`,
		"null rate":          `{"name": "x", "commission_rate": null}`,
		"rate above 1":       `{"name": "x", "commission_rate": 1.000001}`,
		"negative rate":      `{"name": "x", "commission_rate": -0.1}`,
		"seven decimals":     `{"name": "x", "commission_rate": 0.1234567}`,
		"rate as string":     `{"name": "x", "commission_rate": "0.1"}`,
		"negative referrals": `{"name": "x", "commission_rate": 0.1, "min_referrals": -1}`,
		"negative revenue":   `{"name": "x", "commission_rate": 0.1, "min_referee_revenue": -5}`,
		"fractional":         `{"name": "x", "commission_rate": 0.1, "min_referrals": 1.5}`,
		"huge priority":      `{"name": "x", "commission_rate": 0.1, "priority": 3000000000}`,
		"read-only id":       `{"name": "x", "commission_rate": 0.1, "id": "abc"}`,
		"unknown":            `{"name": "x", "commission_rate": 0.1, "color": "red"}`,
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			e.do(http.MethodPost, "/v1/affiliate/tiers", e.admin(), body).fail(t, 400, "VALIDATION_FAILED")
		})
	}
}
