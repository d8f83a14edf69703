package adminapi_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/adminapi"
	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// visitorLimit is an env option setting the per-address visitor limit.
func visitorLimit(n int) envOption {
	return func(c *adminapi.Config) { c.Visitors = referral.AttemptLimit{Max: n, Window: time.Minute} }
}

// impress posts an impression as a visitor of tenant (token "") or with token.
func (e *env) impress(token, tenant string, body any) *resp {
	e.t.Helper()
	path := "/v1/referral/impressions"
	if tenant != "" {
		path += "?tenant_id=" + tenant
	}
	return e.do(http.MethodPost, path, token, body)
}

func TestImpRecordAndLink(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.token(auth.RolePlayer, "alice"), e.token(auth.RolePlayer, "bob")
	e.do("POST", "/v1/referral/codes", alice, map[string]any{"code": "ALICE2026"}).must(t, 200, nil)

	// A visitor scans the poster: the code is valid, the impression recorded with the keyed hash
	// of the visitor's address only.
	var scan apishape.Impression
	e.impress("", e.tenant, map[string]any{"code": "alice2026", "source": "poster_qr_code", "metadata": map[string]any{"poster": "lobby"}}).must(t, 200, &scan)
	if !scan.Valid || scan.ImpressionID == nil || scan.Code != "ALICE2026" {
		t.Fatalf("visitor impression %+v", scan)
	}
	var hash []byte
	var source, meta string
	if err := e.store.DB().QueryRow(`SELECT address_hash, source, metadata::text FROM impressions WHERE id = $1`, *scan.ImpressionID).Scan(&hash, &source, &meta); err != nil {
		t.Fatal(err)
	}
	if want := referral.AddressHash([]byte(testAddressKey), netip.MustParseAddr("127.0.0.1")); !bytes.Equal(hash, want) {
		t.Errorf("address hash %x, want %x", hash, want)
	}
	if source != "poster_qr_code" || meta != `{"poster": "lobby"}` {
		t.Errorf("stored source %q metadata %s", source, meta)
	}

	// The platform reports a click with its service token: recorded without an address.
	var click apishape.Impression
	e.impress(e.token(auth.RoleService, "platform"), "", map[string]any{"code": "ALICE2026"}).must(t, 200, &click)
	var svcHash []byte
	if err := e.store.DB().QueryRow(`SELECT address_hash FROM impressions WHERE id = $1`, *click.ImpressionID).Scan(&svcHash); err != nil || svcHash != nil {
		t.Fatalf("service impression hash %x (%v), want none", svcHash, err)
	}

	// Unknown and malformed codes record nothing and answer 200 valid false.
	for _, code := range []string{"NOPE1", "not a code!"} {
		var none apishape.Impression
		e.impress("", e.tenant, map[string]any{"code": code}).must(t, 200, &none)
		if none.Valid || none.ImpressionID != nil || none.Code == "" {
			t.Errorf("%q: %+v", code, none)
		}
	}
	// Bad input is 400 and records nothing.
	for _, body := range []any{
		map[string]any{},
		map[string]any{"code": "ALICE2026", "source": "Poster QR"},
		map[string]any{"code": "ALICE2026", "source": ""},
		map[string]any{"code": "ALICE2026", "metadata": []any{1}},
		map[string]any{"code": "ALICE2026", "metadata": map[string]any{"x": string(make([]byte, 1100))}},
		map[string]any{"code": "ALICE2026", "impression_id": scan.ImpressionID},
		`{"code": "ALICE\u0000"}`,
		`{"code": "ALICE2026", "metadata": {"x": 1e999999}}`,
		`{"code": "ALICE2026", "metadata": {"x": "\ud800"}}`,
	} {
		e.impress("", e.tenant, body).fail(t, 400, "VALIDATION_FAILED")
	}
	e.impress("", "", map[string]any{"code": "ALICE2026"}).fail(t, 400, "TENANT_REQUIRED")
	e.impress("", "bad%20tenant%21", map[string]any{"code": "ALICE2026"}).fail(t, 400, "VALIDATION_FAILED")
	var stored int
	if err := e.store.DB().Get(&stored, `SELECT count(*) FROM impressions WHERE tenant_id = $1`, e.tenant); err != nil || stored != 2 {
		t.Fatalf("%d impressions stored (%v), want 2", stored, err)
	}

	// Apply-code links the scan; the referral carries it on every read.
	var ref apishape.AppliedReferral
	e.do("POST", "/v1/referral/apply-code", bob, map[string]any{"code": "ALICE2026", "impression_id": scan.ImpressionID}).must(t, 200, &ref)
	if ref.ImpressionID == nil || *ref.ImpressionID != *scan.ImpressionID {
		t.Fatalf("apply-code linked %v, want %v", ref.ImpressionID, scan.ImpressionID)
	}
	var got apishape.Referral
	e.do("GET", "/v1/referral/referrals/"+ref.ID.String(), e.admin(), nil).must(t, 200, &got)
	if got.ImpressionID == nil || *got.ImpressionID != *scan.ImpressionID {
		t.Fatalf("GET referral impression_id %v", got.ImpressionID)
	}
	// A malformed impression_id is a 400; an unknown one never blocks the referral.
	carol := e.token(auth.RolePlayer, "carol")
	e.do("POST", "/v1/referral/apply-code", carol, map[string]any{"code": "ALICE2026", "impression_id": "not-a-uuid"}).fail(t, 400, "VALIDATION_FAILED")
	var unlinked apishape.AppliedReferral
	e.do("POST", "/v1/referral/apply-code", carol, map[string]any{"code": "ALICE2026", "impression_id": "00000000-0000-4000-8000-000000000000"}).must(t, 200, &unlinked)
	if unlinked.ImpressionID != nil {
		t.Fatalf("unknown impression linked: %v", unlinked.ImpressionID)
	}
	// impression_id is read-only on the referral's status change.
	e.do("PUT", "/v1/referral/referrals/"+ref.ID.String()+"/status", e.admin(), map[string]any{"status": "rejected", "impression_id": nil}).fail(t, 400, "VALIDATION_FAILED")

	// Code stats and the funnel count the impressions.
	var codes apishape.List[apishape.Code]
	e.do("GET", "/v1/referral/codes?owner_user_id=alice", e.admin(), nil).must(t, 200, &codes)
	var stats apishape.CodeStats
	e.do("GET", "/v1/referral/codes/"+codes.Items[0].ID.String()+"/stats", e.admin(), nil).must(t, 200, &stats)
	if stats.Impressions != 2 || stats.TotalClaims != 2 {
		t.Fatalf("code stats impressions %d claims %d, want 2 and 2", stats.Impressions, stats.TotalClaims)
	}
	var f apishape.Funnel
	e.do("GET", "/v1/referral/funnel?period=7d&code=alice2026", e.admin(), nil).must(t, 200, &f)
	if f.Period != "7d" || f.Impressions != 2 || f.Referrals != 2 || f.LinkedReferrals != 1 || f.SuccessfulReferrals != 0 || len(f.BySource) != 2 {
		t.Fatalf("funnel %+v", f)
	}
	if f.BySource[0].Source == nil || *f.BySource[0].Source != "poster_qr_code" || f.BySource[0].Impressions != 1 || f.BySource[0].Referrals != 1 {
		t.Fatalf("funnel by source %+v", f.BySource)
	}
	for _, q := range []string{"period=1y", "code=%20", "campaign_id=nope", "perod=7d"} {
		e.do("GET", "/v1/referral/funnel?"+q, e.admin(), nil).fail(t, 400, "VALIDATION_FAILED")
	}

	// Metrics count impressions by validity.
	m := e.do("GET", "/metrics", "", nil)
	for valid, want := range map[string]int{"true": 2, "false": 2} {
		re := regexp.MustCompile(`phoenix_impressions_total\{valid="` + valid + `"\} (\d+)`)
		sm := re.FindSubmatch(m.Body)
		if sm == nil {
			t.Fatalf("no impressions metric for valid=%s", valid)
		}
		if n, _ := strconv.Atoi(string(sm[1])); n != want {
			t.Errorf("impressions valid=%s: %d, want %d", valid, n, want)
		}
	}
}

// TestImpVisitorLimit: only a visitor's valid: false answers count against the per-address
// limit, across tenants; past it every visitor impression is 429 with Retry-After; the service
// token is not limited.
func TestImpVisitorLimit(t *testing.T) {
	e := newEnv(t, visitorLimit(3))
	e.do("POST", "/v1/referral/codes", e.token(auth.RolePlayer, "alice"), map[string]any{"code": "ALICE2026"}).must(t, 200, nil)
	for range 10 {
		e.impress("", e.tenant, map[string]any{"code": "ALICE2026"}).must(t, 200, nil)
	}
	e.impress("", e.tenant, map[string]any{"code": "NOPE1"}).must(t, 200, nil)
	e.impress("", "made-up-1", map[string]any{"code": "NOPE1"}).must(t, 200, nil)
	e.impress("", e.tenant, map[string]any{"code": "Poster QR", "source": "BAD"}).fail(t, 400, "VALIDATION_FAILED")
	e.impress("", "made-up-2", map[string]any{"code": "ALICE2026"}).must(t, 200, nil)
	r := e.impress("", e.tenant, map[string]any{"code": "ALICE2026"})
	r.fail(t, 429, "RATE_LIMITED")
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	svc := e.token(auth.RoleService, "platform")
	for range 5 {
		e.impress(svc, "", map[string]any{"code": "NOPE1"}).must(t, 200, nil)
	}
}

// TestImpVisitorLimitExactUnderConcurrency: 60 parallel visitor impressions of an unknown code
// with a limit of 10 answer exactly 10 times 200.
func TestImpVisitorLimitExactUnderConcurrency(t *testing.T) {
	e := newEnv(t, visitorLimit(10))
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.impress("", e.tenant, map[string]any{"code": "NOPE1"})
			mu.Lock()
			codes[r.Status]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if codes[200] != 10 || codes[429] != 50 {
		t.Fatalf("answers %v, want 10 × 200 and 50 × 429", codes)
	}
}

// TestImpTenantIsolation: an impression, its counts and its link stay in its tenant.
func TestImpTenantIsolation(t *testing.T) {
	e := newEnv(t)
	other := &env{t: t, srv: e.srv, store: e.store, tenant: "iso-" + e.tenant}
	e.do("POST", "/v1/referral/codes", e.token(auth.RolePlayer, "alice"), map[string]any{"code": "ALICE2026"}).must(t, 200, nil)
	var scan apishape.Impression
	e.impress("", e.tenant, map[string]any{"code": "ALICE2026", "source": "poster_qr_code"}).must(t, 200, &scan)

	// The other tenant has no such code: its visitors' impressions are not valid.
	var none apishape.Impression
	other.impress("", other.tenant, map[string]any{"code": "ALICE2026"}).must(t, 200, &none)
	if none.Valid {
		t.Fatalf("another tenant's code counted: %+v", none)
	}
	// The other tenant's service token cannot record into this tenant.
	other.impress(other.token(auth.RoleService, "platform"), e.tenant, map[string]any{"code": "ALICE2026"}).fail(t, 403, "FORBIDDEN")
	// The same code string in the other tenant does not link this tenant's impression.
	other.do("POST", "/v1/referral/codes", other.token(auth.RolePlayer, "alice"), map[string]any{"code": "ALICE2026"}).must(t, 200, nil)
	var ref apishape.AppliedReferral
	other.do("POST", "/v1/referral/apply-code", other.token(auth.RolePlayer, "bob"), map[string]any{"code": "ALICE2026", "impression_id": scan.ImpressionID}).must(t, 200, &ref)
	if ref.ImpressionID != nil {
		t.Fatalf("another tenant's impression linked: %v", ref.ImpressionID)
	}
	// The other tenant's funnel and code stats see none of this tenant's impressions.
	var f apishape.Funnel
	other.do("GET", "/v1/referral/funnel?period=all", other.admin(), nil).must(t, 200, &f)
	if f.Impressions != 0 || f.Referrals != 1 || f.LinkedReferrals != 0 {
		t.Fatalf("other tenant's funnel %+v", f)
	}
	var codes apishape.List[apishape.Code]
	e.do("GET", "/v1/referral/codes", e.admin(), nil).must(t, 200, &codes)
	other.do("GET", fmt.Sprintf("/v1/referral/codes/%s/stats", codes.Items[0].ID), other.admin(), nil).fail(t, 404, "NOT_FOUND")
	e.do("GET", "/v1/referral/funnel?period=all", e.admin(), nil).must(t, 200, &f)
	if f.Impressions != 1 || f.Referrals != 0 {
		t.Fatalf("own funnel %+v", f)
	}
}
