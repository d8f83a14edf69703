package referral

import (
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Limits on posted events (§5).
const (
	MaxEventIDLength = 128
	// MaxUserIDLength bounds a user id, in characters, wherever one is given (an event's, an
	// affiliate's, a code owner's): user ids are JWT subjects.
	MaxUserIDLength = 128
	// MaxEventBatch is the largest number of events one batch may carry.
	MaxEventBatch = 500
	// MaxEventFutureSkew is how far in the future occurred_at may lie (producer clock skew).
	MaxEventFutureSkew = 5 * time.Minute
)

var eventTypePattern = regexp.MustCompile(`^[a-z0-9._-]{1,100}$`)

// ValidEventType reports whether s follows the grammar of an event type and a campaign's
// qualifying_event: 1–100 characters of [a-z0-9._-].
func ValidEventType(s string) bool { return eventTypePattern.MatchString(s) }

// CheckEvent validates a posted event received at now: event_id and user_id 1–128 characters,
// type per ValidEventType, occurred_at at most MaxEventFutureSkew after now (and in year 1 or
// later, which PostgreSQL can store), payload a JSON object that jsonb can store. It returns a
// VALIDATION_FAILED error naming every failing field, or nil; an empty field "is required", a
// present one that breaks a rule says which.
func CheckEvent(ev Event, now time.Time) error {
	fe := FieldErrors{}
	check := func(field, value string, ok bool, rule string) {
		switch {
		case value == "":
			fe.Add(field, "is required: "+rule)
		case !ok:
			fe.Add(field, "must be "+rule)
		}
	}
	n := utf8.RuneCountInString(ev.EventID)
	check("event_id", ev.EventID, n <= MaxEventIDLength && storableText(ev.EventID), "1 to 128 characters without NUL")
	check("type", ev.Type, ValidEventType(ev.Type), "1 to 100 characters of a-z, 0-9, '.', '_' and '-' (lower case)")
	n = utf8.RuneCountInString(ev.UserID)
	check("user_id", ev.UserID, n <= MaxUserIDLength && storableText(ev.UserID), "1 to 128 characters without NUL")
	if ev.OccurredAt.After(now.Add(MaxEventFutureSkew)) {
		fe.Add("occurred_at", "must not be more than 5 minutes in the future")
	}
	if ev.OccurredAt.UTC().Year() < 1 {
		fe.Add("occurred_at", "must not be before year 1")
	}
	if p, err := DecodePayload(ev.Payload); err != nil {
		fe.Add("payload", "must be a JSON object")
	} else if reason := storablePayload(p, 0); reason != "" {
		fe.Add("payload", reason)
	}
	checkReversal(ev, fe)
	return fe.Err()
}

// storableText reports whether s is valid UTF-8 without NUL, which PostgreSQL text cannot hold.
func storableText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// storablePayload returns why a decoded payload cannot be stored as jsonb, or "": strings and
// keys must not contain NUL, numbers must stay within a sane length and exponent range, and
// nesting within MaxPayloadDepth.
func storablePayload(v any, depth int) string {
	if depth > MaxPayloadDepth {
		return "must not nest deeper than " + strconv.Itoa(MaxPayloadDepth) + " levels"
	}
	switch x := v.(type) {
	case string:
		if !storableText(x) {
			return "must not contain NUL characters"
		}
	case json.Number:
		if !StorableNumber(string(x)) {
			return "numbers must be finite, at most 1000 characters long, with an exponent within ±1000"
		}
	case []any:
		for _, y := range x {
			if r := storablePayload(y, depth+1); r != "" {
				return r
			}
		}
	case map[string]any:
		for k, y := range x {
			if !storableText(k) {
				return "must not contain NUL characters"
			}
			if r := storablePayload(y, depth+1); r != "" {
				return r
			}
		}
	}
	return ""
}

// Bounds on the numbers of a request, within what PostgreSQL's numeric (inside jsonb) can hold.
const (
	maxNumberExponent = 1000
	maxNumberLength   = 1000
)

// StorableNumber reports whether s, a JSON number, may be accepted anywhere in a request: finite
// as a float64 (what every JSON consumer can read), at most 1000 characters long and with an
// exponent within ±1000. PostgreSQL's numeric refuses 1e999999 and also 1e-999999, which a
// float64 reads as 0, hence the exponent bound; the length bound keeps the digits after the
// point within numeric's range.
func StorableNumber(s string) bool {
	if len(s) > maxNumberLength {
		return false
	}
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		if e, err := strconv.Atoi(s[i+1:]); err != nil || e > maxNumberExponent || e < -maxNumberExponent {
			return false
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	return err == nil && !math.IsInf(f, 0)
}

// MaxPayloadDepth bounds how deeply an event payload may nest objects and arrays.
const MaxPayloadDepth = 32

// ReferralState is a referral as the event engine sees it: the referral itself, the campaign
// its code is bound to (nil: every campaign is considered) and the campaigns that already paid it.
type ReferralState struct {
	Referral      Referral
	BoundCampaign *uuid.UUID
	Qualified     map[uuid.UUID]bool
}

// Engine decides what events pay (§5.2–§5.4) against a snapshot of one tenant's configuration
// and the state of the referrals and affiliates the events touch. Decide updates that state as it
// goes (a conversion, a qualification, an affiliate's counters), so a sequence of events decided
// by one Engine pays exactly what the same events decided one after another would.
type Engine struct {
	// Campaigns are the tenant's live campaigns, in the order "first campaign" refers to
	// (oldest first). Inactive or out-of-window campaigns may be included: Decide checks.
	Campaigns []Campaign
	// Rules are the tenant's live commission rules, oldest first (inactive ones are skipped).
	Rules []CommissionRule
	// Tiers is the tenant's tier ladder.
	Tiers []Tier
	// Policy is the tenant's hierarchy policy, nil when none was set.
	Policy *HierarchyPolicy
	// Referrals holds the referrals of the events' users, by referee user id.
	Referrals map[string]*ReferralState
	// Affiliates holds the live affiliates among the referrers, by user id, with their counters
	// (ConvertedReferrals, RefereeRevenue) as they stand before the next event. Only tier
	// thresholds are compared with ConvertedReferrals, so a count capped at the largest
	// min_referrals decides the same.
	Affiliates map[string]*Affiliate
	// Upline holds the live ancestors of those affiliates, by id (status is what matters).
	Upline map[uuid.UUID]*Affiliate
}

// Decision is what one event causes. Ledger rows carry every field but ID and CreatedAt, which
// storage assigns.
type Decision struct {
	// Referral is the event user's referral after the event, nil when the event concerns none
	// (not referred, rejected, or the event predates the referral).
	Referral *ReferralState
	// Qualified lists the campaigns that qualify the referral with this event, in order.
	Qualified []uuid.UUID
	// Converted reports that the referral moved pending → converted.
	Converted bool
	// Deferred reports that the referral is held for review (§12): the event pays nothing now
	// and is processed when the review approves.
	Deferred bool
	// Rewards are the reward ledger rows to write.
	Rewards []Reward
	// Affiliate is the referrer's affiliate whose counters the event moved (nil when the referrer
	// is not an affiliate); RevenueDelta is what was added to its referee_revenue.
	Affiliate    *Affiliate
	RevenueDelta int64
	// Tier is the affiliate's effective tier after its counters moved.
	Tier *Tier
	// Commissions are the commission ledger rows to write, rule by rule, level by level.
	Commissions []Commission
}

// Decide runs one event of user ev.UserID through the rules, given its decoded payload.
func (e *Engine) Decide(ev Event, payload map[string]any) Decision {
	var d Decision
	rs := e.Referrals[ev.UserID]
	if rs == nil || rs.Referral.Status == StatusRejected || ev.OccurredAt.Before(rs.Referral.CreatedAt) {
		return d
	}
	d.Referral = rs
	if rs.Referral.Held() {
		// §12: a held referral earns nothing until its review; storage records the event as
		// deferred and replays it on approval.
		d.Deferred = true
		return d
	}
	ref := &rs.Referral
	var aff *Affiliate
	if ref.ReferrerID != nil {
		aff = e.Affiliates[*ref.ReferrerID]
	}

	// §5.2: campaigns.
	for i := range e.Campaigns {
		c := &e.Campaigns[i]
		if rs.BoundCampaign != nil && c.ID != *rs.BoundCampaign {
			continue
		}
		if rs.Qualified[c.ID] || c.QualifyingEvent != ev.Type || !c.ActiveAt(ev.OccurredAt) || !c.QualifyingFilter.Match(payload) {
			continue
		}
		if rs.Qualified == nil {
			rs.Qualified = map[uuid.UUID]bool{}
		}
		rs.Qualified[c.ID] = true
		d.Qualified = append(d.Qualified, c.ID)
		for _, w := range SumByCurrency(c.RefereeRewards) {
			d.Rewards = append(d.Rewards, e.reward(ev, ref, c.ID, ref.RefereeID, RoleReferee, w))
		}
		if ref.ReferrerID != nil {
			for _, w := range SumByCurrency(c.ReferrerRewards) {
				d.Rewards = append(d.Rewards, e.reward(ev, ref, c.ID, *ref.ReferrerID, RoleReferrer, w))
			}
		}
		if ref.Status == StatusPending {
			ref.Status = StatusConverted
			at := ev.OccurredAt
			ref.ConvertedAt = &at
			if ref.CampaignID == nil {
				id := c.ID
				ref.CampaignID = &id
			}
			d.Converted = true
			if aff != nil {
				aff.ConvertedReferrals++
			}
		}
	}

	// §5.4 then §5.3: counters, effective tier, commissions.
	if aff == nil {
		return d
	}
	type match struct {
		rule *CommissionRule
		base int64
	}
	var matches []match
	var largest int64
	for i := range e.Rules {
		r := &e.Rules[i]
		if !r.Active || r.EventType != ev.Type || !r.EventFilter.Match(payload) {
			continue
		}
		base, ok := IntegerAt(payload, r.CommissionField)
		if !ok {
			continue
		}
		matches = append(matches, match{r, base})
		largest = max(largest, base)
	}
	d.Affiliate = aff
	d.RevenueDelta = largest
	aff.RefereeRevenue = SaturatingAdd(aff.RefereeRevenue, largest)
	d.Tier = EffectiveTier(e.Tiers, aff.TierOverrideID, aff.ConvertedReferrals, aff.RefereeRevenue)
	aff.TierID = nil
	if d.Tier != nil {
		id := d.Tier.ID
		aff.TierID = &id
	}
	if aff.Status != AffiliateActive {
		return d
	}
	for _, m := range matches {
		if rate, ok := DirectRate(m.rule, d.Tier); ok {
			// The row records the tier whose rate was used: none for a custom rate.
			var tier *uuid.UUID
			if m.rule.UseTierRate {
				tier = aff.TierID
			}
			if c, ok := e.commission(ev, m.rule, aff, 0, tier, rate, m.base); ok {
				d.Commissions = append(d.Commissions, c)
			}
		}
		for _, up := range UplineShares(e.Policy, aff.Ancestors) {
			anc := e.Upline[up.AffiliateID]
			if anc == nil || anc.Status != AffiliateActive {
				continue // earns nothing, but the walk goes on
			}
			if c, ok := e.commission(ev, m.rule, anc, up.Level, nil, up.Rate, m.base); ok {
				d.Commissions = append(d.Commissions, c)
			}
		}
	}
	return d
}

func (e *Engine) reward(ev Event, ref *Referral, campaign uuid.UUID, user, role string, w Wallet) Reward {
	return Reward{TenantID: ev.TenantID, UserID: user, Role: role, CampaignID: campaign,
		ReferralID: ref.ID, EventID: ev.EventID, CurrencyID: w.CurrencyID, Amount: w.Amount}
}

func (e *Engine) commission(ev Event, r *CommissionRule, a *Affiliate, level int, tier *uuid.UUID, rate Rate, base int64) (Commission, bool) {
	amount := rate.Apply(base)
	if amount <= 0 {
		return Commission{}, false
	}
	return Commission{TenantID: ev.TenantID, AffiliateID: a.ID, UserID: a.UserID, Level: level,
		SourceUserID: ev.UserID, EventID: ev.EventID, RuleID: r.ID, TierID: tier, Rate: rate,
		BaseAmount: base, Amount: amount, CurrencyID: r.CurrencyID}, true
}

// DirectRate returns the rate the direct affiliate (level 0) earns under rule r with effective
// tier t: the tier's commission rate for a use_tier_rate rule (no tier: no commission, ok false),
// else the rule's custom rate.
func DirectRate(r *CommissionRule, t *Tier) (Rate, bool) {
	if r.UseTierRate {
		if t == nil {
			return 0, false
		}
		return t.CommissionRate, true
	}
	if r.CustomRate == nil {
		return 0, false
	}
	return *r.CustomRate, true
}

// UplineShare is what one ancestor's level earns: the ancestor, its distance from the direct
// affiliate (1 = parent) and the policy's rate for that level.
type UplineShare struct {
	AffiliateID uuid.UUID
	Level       int
	Rate        Rate
}

// UplineShares lists the ancestors that share in a commission under policy p, nearest first:
// distance d = 1..max_depth earns level_rates[d-1]. ancestors is root first (as affiliates store
// it). An absent or inactive policy shares nothing.
func UplineShares(p *HierarchyPolicy, ancestors []uuid.UUID) []UplineShare {
	if p == nil || !p.Active {
		return nil
	}
	var out []UplineShare
	for d := 1; d <= p.MaxDepth && d <= len(ancestors) && d <= len(p.LevelRates); d++ {
		out = append(out, UplineShare{AffiliateID: ancestors[len(ancestors)-d], Level: d, Rate: p.LevelRates[d-1]})
	}
	return out
}

// SumByCurrency folds wallet entries into one per currency, in order of first appearance,
// dropping non-positive totals: a reward ledger has one row per beneficiary and currency.
func SumByCurrency(ws []Wallet) []Wallet {
	var out []Wallet
	at := map[string]int{}
	for _, w := range ws {
		if i, ok := at[w.CurrencyID]; ok {
			out[i].Amount = SaturatingAdd(out[i].Amount, w.Amount)
			continue
		}
		at[w.CurrencyID] = len(out)
		out = append(out, w)
	}
	kept := out[:0]
	for _, w := range out {
		if w.Amount > 0 {
			kept = append(kept, w)
		}
	}
	return kept
}

// SaturatingAdd returns a+b for b ≥ 0, or math.MaxInt64 where the sum would overflow: amounts and
// counters stop at the largest bigint instead of wrapping.
func SaturatingAdd(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
