package adminapi_test

import (
	"net/http"
	"strings"
	"testing"
)

type affRuleObj struct {
	ID              string         `json:"id"`
	TenantID        string         `json:"tenant_id"`
	Name            string         `json:"name"`
	EventType       string         `json:"event_type"`
	EventFilter     map[string]any `json:"event_filter"`
	CommissionField string         `json:"commission_field"`
	UseTierRate     bool           `json:"use_tier_rate"`
	CustomRate      *float64       `json:"custom_rate"`
	CurrencyID      string         `json:"currency_id"`
	Active          bool           `json:"active"`
	CreatedAt       string         `json:"created_at"`
	UpdatedAt       string         `json:"updated_at"`
}

func TestAffRulesCRUD(t *testing.T) {
	e := newEnv(t)
	tok := e.admin()
	base := "/v1/affiliate/commission-rules"

	// Defaults: tier rate, field "amount", active, no filter.
	r := e.do(http.MethodPost, base, tok, map[string]any{"name": "Deposits", "event_type": "deposit.completed", "currency_id": "EUR"})
	var tierRule affRuleObj
	r.must(t, 200, &tierRule)
	if !tierRule.UseTierRate || tierRule.CustomRate != nil || tierRule.CommissionField != "amount" || !tierRule.Active ||
		tierRule.EventFilter != nil || tierRule.CurrencyID != "EUR" || tierRule.TenantID != e.tenant {
		t.Fatalf("defaults %+v", tierRule)
	}
	for _, k := range []string{`"event_filter":null`, `"custom_rate":null`} {
		if !strings.Contains(string(r.Body), k) {
			t.Fatalf("body lacks %s: %s", k, r.Body)
		}
	}
	if g := e.do(http.MethodGet, base+"/"+tierRule.ID, tok, nil).must(t, 200, nil); string(g.Body) != string(r.Body) {
		t.Fatalf("GET differs from POST:\n%s\n%s", g.Body, r.Body)
	}

	// Custom rate, filter and nested field, exactly round-tripped.
	r = e.do(http.MethodPost, base, tok, `{"name": "Big bets", "event_type": "bet.settled",
		"event_filter": {"amount": {"gte": 1000}, "currency": {"in": ["EUR", "USD"]}},
		"commission_field": "bet.stake", "use_tier_rate": false, "custom_rate": 0.015, "currency_id": "points", "active": false}`)
	var custom affRuleObj
	r.must(t, 200, &custom)
	if custom.UseTierRate || custom.CustomRate == nil || *custom.CustomRate != 0.015 || custom.CommissionField != "bet.stake" ||
		custom.Active || custom.EventFilter["currency"] == nil {
		t.Fatalf("custom %+v", custom)
	}
	if !strings.Contains(string(r.Body), `"custom_rate":0.015,`) {
		t.Fatalf("rate not exact: %s", r.Body)
	}
	if g := e.do(http.MethodGet, base+"/"+custom.ID, tok, nil).must(t, 200, nil); string(g.Body) != string(r.Body) {
		t.Fatalf("GET differs from POST:\n%s\n%s", g.Body, r.Body)
	}

	var l struct {
		Items []affRuleObj `json:"items"`
		Total int          `json:"total"`
	}
	e.do(http.MethodGet, base, tok, nil).must(t, 200, &l)
	if l.Total != 2 || l.Items[0].ID != custom.ID {
		t.Fatalf("list (newest first) %+v", l)
	}
	e.do(http.MethodGet, base+"?active=true", tok, nil).must(t, 200, &l)
	if l.Total != 1 || l.Items[0].ID != tierRule.ID {
		t.Fatalf("active filter %+v", l)
	}
	e.do(http.MethodGet, base+"?event_type=bet.settled", tok, nil).must(t, 200, &l)
	if l.Total != 1 || l.Items[0].ID != custom.ID {
		t.Fatalf("event_type filter %+v", l)
	}
	e.do(http.MethodGet, base+"?active=maybe", tok, nil).fail(t, 400, "VALIDATION_FAILED")

	// PUT replaces: switching back to the tier rate needs custom_rate null or absent.
	var put affRuleObj
	e.do(http.MethodPut, base+"/"+custom.ID, tok, map[string]any{"name": "Big bets", "event_type": "bet.settled",
		"currency_id": "points", "custom_rate": nil, "id": "ignored"}).must(t, 200, &put)
	if !put.UseTierRate || put.CustomRate != nil || put.EventFilter != nil || put.CommissionField != "amount" || !put.Active || put.ID != custom.ID {
		t.Fatalf("after PUT %+v", put)
	}

	e.do(http.MethodDelete, base+"/"+custom.ID, tok, nil).must(t, 204, nil)
	e.do(http.MethodGet, base+"/"+custom.ID, tok, nil).fail(t, 404, "NOT_FOUND")
	e.do(http.MethodDelete, base+"/"+custom.ID, tok, nil).fail(t, 404, "NOT_FOUND")
	e.do(http.MethodGet, base+"/"+tierRule.ID, newEnv(t).admin(), nil).fail(t, 404, "NOT_FOUND")
}

func TestAffRulesValidation(t *testing.T) {
	e := newEnv(t)
	ok := `"name": "r", "event_type": "deposit.completed", "currency_id": "EUR"`
	bodies := map[string]string{
		"missing name":              `{"event_type": "deposit.completed", "currency_id": "EUR"}`,
		"missing event_type":        `{"name": "r", "currency_id": "EUR"}`,
		"bad event_type":            `{"name": "r", "event_type": "Deposit Completed", "currency_id": "EUR"}`,
		"missing currency":          `{"name": "r", "event_type": "deposit.completed"}`,
		"long currency":             `{"name": "r", "event_type": "deposit.completed", "currency_id": "` + strings.Repeat("c", 65) + `"}`,
		"custom rate with tier":     `{` + ok + `, "custom_rate": 0.1}`,
		"custom rate with tier set": `{` + ok + `, "use_tier_rate": true, "custom_rate": 0.1}`,
		"no custom rate":            `{` + ok + `, "use_tier_rate": false}`,
		"null custom rate":          `{` + ok + `, "use_tier_rate": false, "custom_rate": null}`,
		"custom rate above 1":       `{` + ok + `, "use_tier_rate": false, "custom_rate": 1.5}`,
		"custom rate 7 decimals":    `{` + ok + `, "use_tier_rate": false, "custom_rate": 0.0000001}`,
		"filter not object":         `{` + ok + `, "event_filter": [1]}`,
		"filter bad op":             `{` + ok + `, "event_filter": {"amount": {"gte": "x"}}}`,
		"filter empty segment":      `{` + ok + `, "event_filter": {"a..b": 1}}`,
		"empty field":               `{` + ok + `, "commission_field": ""}`,
		"field empty segment":       `{` + ok + `, "commission_field": "bet..stake"}`,
		"field trailing dot":        `{` + ok + `, "commission_field": "amount."}`,
		"read-only created_at":      `{` + ok + `, "created_at": "2026-01-01T00:00:00Z"}`,
		"unknown field":             `{` + ok + `, "priority": 1}`,
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			e.do(http.MethodPost, "/v1/affiliate/commission-rules", e.admin(), body).fail(t, 400, "VALIDATION_FAILED")
		})
	}
	e.do(http.MethodPost, "/v1/affiliate/commission-rules", e.admin(), `{`+ok+`, "use_tier_rate": false, "custom_rate": 0}`).must(t, 200, nil)
}
