package referral

import (
	"math/big"
	"testing"

	"github.com/google/uuid"
	"pgregory.net/rapid"
)

func TestReversedNet(t *testing.T) {
	for _, c := range []struct {
		name               string
		b, total, reversed int64
		rate               Rate
		want               int64
	}{
		{"nothing reversed is the original", 5000, 5000, 0, 50_000, 250},
		{"half of the base", 5000, 5000, 2500, 50_000, 125},
		{"floor of an odd share", 999, 1000, 1, 123_457, 123}, // 999·999/1000·0.123457 = 123.2…
		{"everything reversed", 5000, 5000, 5000, 1_000_000, 0},
		{"more than everything", 5000, 5000, 6000, 1_000_000, 0},
		{"a smaller row of the event", 100, 400, 100, 1_000_000, 75},
		{"no base total", 100, 0, 0, 1_000_000, 0},
		{"rate zero", 100, 100, 0, 0, 0},
		{"huge values do not overflow", 1 << 62, 1 << 62, 1, 1_000_000, 1<<62 - 1},
	} {
		if got := ReversedNet(c.b, c.total, c.reversed, c.rate); got != c.want {
			t.Errorf("%s: ReversedNet(%d, %d, %d, %s) = %d, want %d", c.name, c.b, c.total, c.reversed, c.rate, got, c.want)
		}
	}
}

// TestReversedNetProperties: for any inputs the net is the exact floor, never negative, never
// above the original, and never grows as more is reversed.
func TestReversedNetProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		total := rapid.Int64Range(1, 1<<40).Draw(rt, "total")
		b := rapid.Int64Range(0, total).Draw(rt, "b")
		r1 := rapid.Int64Range(0, total).Draw(rt, "r1")
		r2 := rapid.Int64Range(r1, total).Draw(rt, "r2")
		rate := Rate(rapid.Int64Range(0, RateScale).Draw(rt, "rate"))
		n1, n2 := ReversedNet(b, total, r1, rate), ReversedNet(b, total, r2, rate)
		exact := new(big.Rat).SetFrac(new(big.Int).Mul(new(big.Int).Mul(big.NewInt(b), big.NewInt(total-r1)), big.NewInt(int64(rate))),
			new(big.Int).Mul(big.NewInt(total), big.NewInt(RateScale)))
		floor := new(big.Int).Quo(exact.Num(), exact.Denom())
		if floor.Int64() != n1 {
			rt.Fatalf("net %d, exact floor %s", n1, floor)
		}
		if n1 < 0 || n1 > rate.Apply(b) || n2 > n1 {
			rt.Fatalf("net %d (then %d) outside 0..%d", n1, n2, rate.Apply(b))
		}
	})
}

func revRow(id byte, b int64, rate Rate) Commission {
	return Commission{ID: uuid.UUID{id}, EventID: "dep", BaseAmount: b, Rate: rate, Amount: rate.Apply(b), CurrencyID: "EUR"}
}

func TestPlanReversal(t *testing.T) {
	aff := uuid.UUID{9}
	rows := []Commission{revRow(1, 1000, 100_000), revRow(2, 1000, 50_000), revRow(3, 400, 1_000_000)}
	state := func(reversed int64, reversals int, nets ...int64) *ReversalState {
		s := &ReversalState{Commissions: rows, Net: map[uuid.UUID]int64{}, Reversed: reversed, Reversals: reversals,
			Revenue: 1000, RevenueAffiliate: &aff,
			Rewards: []Reward{{ID: uuid.UUID{7}, UserID: "alice", Role: RoleReferrer, CurrencyID: "points", Amount: 100}}}
		for i, c := range rows {
			s.Net[c.ID] = nets[i]
		}
		return s
	}
	rev := func(amount *int64) Event { return Event{EventID: "ref", Reverses: "dep", ReverseAmount: amount} }
	type want struct {
		amount, drop int64
		backs        []int64
		rewards      int
		code         string
	}
	for _, c := range []struct {
		name string
		ev   Event
		s    *ReversalState
		want want
	}{
		{"partial refund", rev(ptr[int64](250)), state(0, 0, 100, 50, 400),
			want{amount: 250, drop: 250, backs: []int64{25, 13, 100}}}, // nets 75, 37 (floor 37.5), 300
		{"the rest, by default", rev(nil), state(250, 1, 75, 37, 300),
			want{amount: 750, drop: 750, backs: []int64{75, 37, 300}, rewards: 1}},
		{"an admin reversed a row: it stays at zero", rev(ptr[int64](500)), state(0, 0, 0, 50, 400),
			want{amount: 500, drop: 500, backs: []int64{25, 200}}},
		{"more than remains", rev(ptr[int64](751)), state(250, 1, 75, 37, 300), want{code: ENotReversible}},
		{"already in full", rev(nil), state(1000, 2, 0, 0, 0), want{code: ENotReversible}},
	} {
		p, err := PlanReversal(c.ev, c.s)
		if c.want.code != "" {
			if ErrorCode(err) != c.want.code {
				t.Errorf("%s: err = %v, want %s", c.name, err, c.want.code)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var backs []int64
		for _, r := range p.Commissions {
			if r.ReversesID == nil || r.EventID != "ref" || r.Amount >= 0 {
				t.Errorf("%s: row %+v is not a reversal of the event", c.name, r)
			}
			backs = append(backs, -r.Amount)
		}
		if p.Amount != c.want.amount || p.RevenueDrop != c.want.drop || len(p.Rewards) != c.want.rewards || !equalInts(backs, c.want.backs) {
			t.Errorf("%s: amount %d drop %d rows %v rewards %d, want %+v", c.name, p.Amount, p.RevenueDrop, backs, len(p.Rewards), c.want)
		}
		for _, r := range p.Rewards {
			if r.Amount != -100 || *r.ReversesID != (uuid.UUID{7}) {
				t.Errorf("%s: clawback %+v", c.name, r)
			}
		}
	}
}

func TestPlanReversalWithoutCommissions(t *testing.T) {
	s := &ReversalState{Rewards: []Reward{{ID: uuid.UUID{1}, Amount: 50}}}
	if _, err := PlanReversal(Event{EventID: "r", Reverses: "d", ReverseAmount: ptr[int64](1)}, s); ErrorCode(err) != EValidation {
		t.Fatalf("reverse_amount on an original without commissions: %v, want VALIDATION_FAILED", err)
	}
	p, err := PlanReversal(Event{EventID: "r", Reverses: "d"}, s)
	if err != nil || len(p.Rewards) != 1 || p.Rewards[0].Amount != -50 || p.Amount != 0 {
		t.Fatalf("full reversal: %+v, %v", p, err)
	}
	s.Reversals = 1
	if _, err := PlanReversal(Event{EventID: "r2", Reverses: "d"}, s); ErrorCode(err) != ENotReversible {
		t.Fatalf("second full reversal: %v, want NOT_REVERSIBLE", err)
	}
}

func TestPlanRowReversal(t *testing.T) {
	row := revRow(1, 1000, 100_000)
	got, err := PlanRowReversal(row, 60, ptr("declined"))
	if err != nil || got.Amount != -60 || *got.ReversesID != row.ID || *got.Reason != "declined" || got.EventID != row.EventID {
		t.Fatalf("PlanRowReversal = %+v, %v", got, err)
	}
	if _, err := PlanRowReversal(row, 0, nil); ErrorCode(err) != ENotReversible {
		t.Errorf("nothing left: %v", err)
	}
	if _, err := PlanRowReversal(got, 60, nil); ErrorCode(err) != ENotReversible {
		t.Errorf("a reversal row: %v", err)
	}
}

func TestCheckEventReversalFields(t *testing.T) {
	base := Event{EventID: "r1", Type: "deposit.refunded", UserID: "u"}
	for _, c := range []struct {
		name  string
		ev    func(Event) Event
		field string
	}{
		{"fine", func(e Event) Event { e.Reverses, e.ReverseAmount = "d1", ptr[int64](5); return e }, ""},
		{"amount without reverses", func(e Event) Event { e.ReverseAmount = ptr[int64](5); return e }, "reverse_amount"},
		{"zero amount", func(e Event) Event { e.Reverses, e.ReverseAmount = "d1", ptr[int64](0); return e }, "reverse_amount"},
		{"negative amount", func(e Event) Event { e.Reverses, e.ReverseAmount = "d1", ptr[int64](-3); return e }, "reverse_amount"},
		{"itself", func(e Event) Event { e.Reverses = "r1"; return e }, "reverses"},
		{"NUL", func(e Event) Event { e.Reverses = "d\x00"; return e }, "reverses"},
	} {
		err := CheckEvent(c.ev(base), base.OccurredAt)
		var de *Error
		if c.field == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if !asError(err, &de) || de.Fields[c.field] == "" {
			t.Errorf("%s: %v, want a %s failure", c.name, err, c.field)
		}
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
