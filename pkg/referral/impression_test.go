package referral

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestValidSource(t *testing.T) {
	for s, want := range map[string]bool{
		"poster_qr_code":        true,
		"a":                     true,
		"newsletter.2026-03":    true,
		strings.Repeat("x", 64): true,
		strings.Repeat("x", 65): false,
		"":                      false,
		"Poster":                false,
		"poster qr":             false,
		"poster/qr":             false,
		"é":                     false,
		"poster\x00":            false,
	} {
		if got := ValidSource(s); got != want {
			t.Errorf("ValidSource(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestImpressionValid(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	limit := 1
	owner := "alice"
	for _, tc := range []struct {
		name string
		code *Code
		want bool
	}{
		{"unknown", nil, false},
		{"valid", &Code{Active: true, OwnerUserID: &owner}, true},
		{"inactive", &Code{Active: false}, false},
		{"expired at its expiry", &Code{Active: true, ExpiresAt: &now}, false},
		{"exhausted", &Code{Active: true, UsageLimit: &limit, Uses: 1}, false},
		{"one use left", &Code{Active: true, UsageLimit: &limit}, true},
	} {
		if got := ImpressionValid(tc.code, now); got != tc.want {
			t.Errorf("%s: ImpressionValid = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestCanLink(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ttl := 30 * 24 * time.Hour
	code, other, ref := uuid.New(), uuid.New(), uuid.New()
	imp := func(edit func(*Impression)) Impression {
		i := Impression{ID: uuid.New(), CodeID: code, CreatedAt: now.Add(-time.Hour)}
		if edit != nil {
			edit(&i)
		}
		return i
	}
	for _, tc := range []struct {
		name string
		imp  Impression
		want bool
	}{
		{"same code, fresh, unlinked", imp(nil), true},
		{"exactly ttl old", imp(func(i *Impression) { i.CreatedAt = now.Add(-ttl) }), true},
		{"older than ttl", imp(func(i *Impression) { i.CreatedAt = now.Add(-ttl - time.Microsecond) }), false},
		{"another code", imp(func(i *Impression) { i.CodeID = other }), false},
		{"already linked", imp(func(i *Impression) { i.ReferralID = &ref }), false},
		{"recorded a moment later by a replica's clock", imp(func(i *Impression) { i.CreatedAt = now.Add(time.Millisecond) }), true},
	} {
		if got := CanLink(tc.imp, code, now, ttl); got != tc.want {
			t.Errorf("%s: CanLink = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestImpressionBucketStart(t *testing.T) {
	at := time.Date(2026, 3, 1, 0, 59, 59, 999999000, time.FixedZone("x", 3600))
	if got, want := ImpressionBucketStart(at), time.Date(2026, 2, 28, 0, 0, 0, 0, time.UTC); !got.Equal(want) || got.Location() != time.UTC {
		t.Fatalf("ImpressionBucketStart = %v, want %v", got, want)
	}
}

func TestFunnelOf(t *testing.T) {
	qr, mail := "poster_qr_code", "newsletter"
	got := FunnelOf([]FunnelSource{
		{Source: nil, Impressions: 5, Referrals: 4, Successful: 1},
		{Source: &mail, Impressions: 5, Referrals: 1},
		{Source: &qr, Impressions: 9, Referrals: 3, Successful: 2},
	}, 4)
	if got.Impressions != 19 || got.Referrals != 8 || got.Successful != 3 || got.LinkedReferrals != 4 {
		t.Fatalf("totals = %+v", got)
	}
	var order []string
	for _, s := range got.BySource {
		name := "<none>"
		if s.Source != nil {
			name = *s.Source
		}
		order = append(order, name)
	}
	if strings.Join(order, ",") != "poster_qr_code,newsletter,<none>" {
		t.Fatalf("order = %v", order)
	}
	if empty := FunnelOf(nil, 0); empty.BySource == nil || len(empty.BySource) != 0 {
		t.Fatalf("empty funnel's breakdown = %#v, want []", empty.BySource)
	}
}
