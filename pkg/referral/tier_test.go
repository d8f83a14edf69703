package referral

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestEffectiveTier(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func(name string, prio int, rate Rate, minRef, minRev int64, age int) Tier {
		return Tier{ID: uuid.New(), Name: name, Priority: prio, CommissionRate: rate, MinReferrals: minRef, MinRefereeRevenue: minRev, CreatedAt: t0.Add(time.Duration(age) * time.Hour)}
	}
	bronze := mk("bronze", 1, 50000, 0, 0, 0)
	silver := mk("silver", 2, 80000, 5, 0, 1)
	gold := mk("gold", 3, 100000, 10, 100000, 2)
	twinA := mk("twinA", 2, 90000, 5, 0, 3)
	tiers := []Tier{bronze, silver, gold}
	tests := []struct {
		name     string
		tiers    []Tier
		override *uuid.UUID
		ref, rev int64
		want     string
	}{
		{"no tiers", nil, nil, 100, 100, ""},
		{"base tier", tiers, nil, 0, 0, "bronze"},
		{"silver by referrals", tiers, nil, 5, 0, "silver"},
		{"gold needs revenue too", tiers, nil, 10, 99999, "silver"},
		{"gold", tiers, nil, 10, 100000, "gold"},
		{"override pins lower tier", tiers, &bronze.ID, 50, 1 << 40, "bronze"},
		{"override to unknown tier ignored", tiers, ptr(uuid.New()), 5, 0, "silver"},
		{"priority tie broken by higher rate", []Tier{bronze, silver, twinA}, nil, 5, 0, "twinA"},
		{"nothing qualifies", []Tier{silver, gold}, nil, 0, 0, ""},
	}
	for _, tt := range tests {
		got := EffectiveTier(tt.tiers, tt.override, tt.ref, tt.rev)
		name := ""
		if got != nil {
			name = got.Name
		}
		if name != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, name, tt.want)
		}
	}
	// Equal priority and rate: the older tier wins.
	older, newer := mk("older", 5, 1, 0, 0, 0), mk("newer", 5, 1, 0, 0, 1)
	if got := EffectiveTier([]Tier{newer, older}, nil, 0, 0); got.Name != "older" {
		t.Errorf("tie on priority and rate: got %q, want older", got.Name)
	}
}

func TestNextTier(t *testing.T) {
	bronze := Tier{ID: uuid.New(), Name: "bronze", Priority: 1}
	silver := Tier{ID: uuid.New(), Name: "silver", Priority: 2, MinReferrals: 5}
	gold := Tier{ID: uuid.New(), Name: "gold", Priority: 3, MinReferrals: 10, MinRefereeRevenue: 1000}
	tiers := []Tier{bronze, silver, gold}
	next, rr, rv := NextTier(tiers, &tiers[0], 2, 0)
	if next == nil || next.Name != "silver" || rr != 3 || rv != 0 {
		t.Fatalf("from bronze: %v %d %d", next, rr, rv)
	}
	next, rr, rv = NextTier(tiers, &tiers[1], 7, 400)
	if next == nil || next.Name != "gold" || rr != 3 || rv != 600 {
		t.Fatalf("from silver: %v %d %d", next, rr, rv)
	}
	if next, _, _ := NextTier(tiers, &tiers[2], 20, 5000); next != nil {
		t.Fatalf("from gold: %v", next)
	}
}

func ptr[T any](v T) *T { return &v }
