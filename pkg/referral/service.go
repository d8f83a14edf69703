package referral

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// The services below are what the gateways ask of storage; pkg/postgres implements them all.
// Each method names the error codes it answers (as *Error); any other error is internal. Every
// method may also answer UNAVAILABLE when storage met too much contention to finish the request
// (a deadlock or a serialization failure that kept recurring): the client may simply retry.
// Tenants scope everything: an id of another tenant is NOT_FOUND like an unknown one.

// CampaignService stores campaigns (§4.1).
type CampaignService interface {
	// CreateCampaign stores a new campaign built from c (its id and timestamps are assigned)
	// and returns it as stored.
	CreateCampaign(ctx context.Context, c Campaign) (Campaign, error)
	// GetCampaign returns a live campaign of the tenant. Errors: NOT_FOUND.
	GetCampaign(ctx context.Context, tenant string, id uuid.UUID) (Campaign, error)
	// ListCampaigns returns a page of the tenant's live campaigns, newest first, and how many
	// match f in all.
	ListCampaigns(ctx context.Context, tenant string, f CampaignFilter) ([]Campaign, int, error)
	// ReplaceCampaign overwrites every writable field of campaign c.ID with c's and returns it.
	// Errors: NOT_FOUND.
	ReplaceCampaign(ctx context.Context, c Campaign) (Campaign, error)
	// DeleteCampaign hides a campaign from every read; codes, referrals and ledger rows naming
	// it keep naming it. Errors: NOT_FOUND.
	DeleteCampaign(ctx context.Context, tenant string, id uuid.UUID) error
}

// CampaignFilter selects campaigns for ListCampaigns; a nil field does not filter.
type CampaignFilter struct {
	Active *bool
	Limit  int
	Offset int
}

// CodeService stores referral and promo codes (§4.2).
type CodeService interface {
	// CreatePlayerCode creates a code owned by player: code (already normalised) or, when
	// empty, a generated one — unless the player already owns an active generated code, which
	// is then returned unchanged. Errors: CODE_TAKEN, CODE_LIMIT_REACHED (MaxPlayerCodes).
	CreatePlayerCode(ctx context.Context, tenant, player, code string, usageLimit *int) (Code, error)
	// CreateAdminCode creates a promo code from c (c.Code empty: generated); its campaign, when
	// set, must be a live campaign of the tenant. Errors: CODE_TAKEN, VALIDATION_FAILED
	// (campaign_id).
	CreateAdminCode(ctx context.Context, c Code) (Code, error)
	// GetCode returns a live code of the tenant. Errors: NOT_FOUND.
	GetCode(ctx context.Context, tenant string, id uuid.UUID) (Code, error)
	// ListCodes returns a page of the tenant's live codes, newest first, and how many match f.
	ListCodes(ctx context.Context, tenant string, f CodeFilter) ([]Code, int, error)
	// ReplaceCode overwrites the writable fields of code c.ID (usage limit, campaign, owner,
	// expiry, active) with c's; the code string and an affiliate code's owner cannot change.
	// Errors: NOT_FOUND, VALIDATION_FAILED (code, owner_user_id, usage_limit below the uses,
	// campaign_id).
	ReplaceCode(ctx context.Context, c Code) (Code, error)
	// PatchCode changes the fields p sets. Errors: NOT_FOUND, VALIDATION_FAILED (usage_limit
	// below the uses, campaign_id).
	PatchCode(ctx context.Context, tenant string, id uuid.UUID, p CodePatch) (Code, error)
	// DeleteCode hides a code from every read and frees its string; referrals made with it keep
	// pointing at it. Errors: NOT_FOUND, INVALID_TRANSITION (an affiliate's code, which goes
	// with its affiliate only).
	DeleteCode(ctx context.Context, tenant string, id uuid.UUID) error
	// CodeClaims returns a live code, a page of the referrals made with it (newest first) and
	// their total count. Errors: NOT_FOUND.
	CodeClaims(ctx context.Context, tenant string, id uuid.UUID, limit, offset int) (Code, []CodeClaim, int, error)
}

// CodeFilter selects codes for ListCodes; a nil field does not filter.
type CodeFilter struct {
	OwnerUserID *string
	CampaignID  *uuid.UUID
	Active      *bool
	Limit       int
	Offset      int
}

// CodePatch is a partial update of a code: a field is changed only when its Set flag is true
// (a nil value then clears it), Active only when not nil.
type CodePatch struct {
	SetUsageLimit bool
	UsageLimit    *int
	Active        *bool
	SetExpiresAt  bool
	ExpiresAt     *time.Time
	SetCampaignID bool
	CampaignID    *uuid.UUID
}

// CodeClaim is one referral made with a code, as code stats list it.
type CodeClaim struct {
	ReferralID uuid.UUID
	RefereeID  string
	Status     string
	ClaimedAt  time.Time
}

// ReferralService makes and follows referrals (§4.3, §4.4).
type ReferralService interface {
	// ApplyCode makes player referee the referral of code (already normalised), runs the
	// built-in referral.applied event in the same transaction, and returns the referral as that
	// event left it with the event's outcome. CheckApply decides, so the checks run in the
	// contract's order, the first failure wins. impression, when set, links the referral to it
	// when CanLink allows (§15), else the referral is made unlinked. Errors: CODE_NOT_FOUND,
	// CODE_INACTIVE, CODE_EXPIRED, SELF_REFERRAL, ALREADY_REFERRED, REFERRAL_CYCLE, CODE_EXHAUSTED.
	ApplyCode(ctx context.Context, tenant, referee, code string, metadata json.RawMessage, impression *uuid.UUID) (Referral, EventOutcome, error)
	// GetReferral returns a referral of the tenant. Errors: NOT_FOUND.
	GetReferral(ctx context.Context, tenant string, id uuid.UUID) (Referral, error)
	// ListReferrals returns a page of the tenant's referrals, newest first, and how many match f.
	ListReferrals(ctx context.Context, tenant string, f ReferralFilter) ([]Referral, int, error)
	// SetReferralStatus moves a referral to status (verified or rejected), recording reason
	// and the time of the change. Errors: NOT_FOUND, INVALID_TRANSITION.
	SetReferralStatus(ctx context.Context, tenant string, id uuid.UUID, status string, reason *string) (Referral, error)
	// ReferralStats counts the tenant's referrals created within period, up to now, only those
	// of campaignID when it is set.
	ReferralStats(ctx context.Context, tenant string, period Period, campaignID *uuid.UUID) (ReferralStats, error)
	// Leaderboard ranks, at most limit of them, the referrers of the tenant's referrals created
	// within period, up to now: successful descending, then total descending, then user id in
	// byte order. Referrals without a referrer do not count.
	Leaderboard(ctx context.Context, tenant string, period Period, limit int) ([]LeaderboardEntry, error)
}

// ReferralFilter selects referrals for ListReferrals; a nil field does not filter. CreatedFrom
// is inclusive, CreatedTo exclusive.
type ReferralFilter struct {
	CampaignID  *uuid.UUID
	Code        *string
	ReferrerID  *string
	RefereeID   *string
	Status      *string
	CreatedFrom *time.Time
	CreatedTo   *time.Time
	// Review keeps referrals whose review is in that state (§12).
	Review *string
	Limit  int
	Offset int
}

// ReferralStats counts the referrals created in a period (§4.4).
type ReferralStats struct {
	Total      int64
	Successful int64
	Pending    int64
	Rejected   int64
}

// LeaderboardEntry is one referrer's standing on a leaderboard (Rank 1 is the first).
type LeaderboardEntry struct {
	Rank       int
	UserID     string
	Successful int64
	Total      int64
}

// AttemptService enforces the failed code-attempt limit (§4.3).
type AttemptService interface {
	// ReserveAttempt reserves a slot of subject's failed-attempt limit for a code attempt about
	// to run; call Settle on it once the attempt's outcome is known. A zero lim.Max disables the
	// limit (the Attempt reserves nothing). Errors: RATE_LIMITED (with RetryAfter) when the
	// failures and the attempts still running in the window fill the limit.
	ReserveAttempt(ctx context.Context, lim AttemptLimit, tenant, subject string) (Attempt, error)
}

// AttemptLimit is the failed code-attempt limit of §4.3: at most Max failures per Window, per
// tenant and subject (a player id or, for visitors, a client address).
type AttemptLimit struct {
	Max    int
	Window time.Duration
}

// Attempt is a code attempt holding one slot of its subject's failed-attempt limit while it
// runs. The slot counts as a failure until Settle says otherwise, so attempts running at once
// never pass the limit together.
type Attempt interface {
	// Settle records the attempt's outcome: a failed attempt keeps its slot for the window, any
	// other outcome frees it.
	Settle(ctx context.Context, failed bool) error
}

// AffiliateService stores affiliates (§4.5).
type AffiliateService interface {
	// CreateAffiliate makes in.UserID an affiliate of in.TenantID with in.Status and
	// in.TierOverrideID, and registers its code (in.AffiliateCode, normalised; empty:
	// generated) as an unlimited referral code owned by the user. The new affiliate is a root.
	// Errors: AFFILIATE_EXISTS, CODE_TAKEN, VALIDATION_FAILED (tier_override_id).
	CreateAffiliate(ctx context.Context, in Affiliate) (Affiliate, error)
	// GetAffiliate returns a live affiliate of the tenant with its current counters and
	// effective tier. Errors: NOT_FOUND.
	GetAffiliate(ctx context.Context, tenant string, id uuid.UUID) (Affiliate, error)
	// ListAffiliates returns a page of the tenant's live affiliates, newest first, and how many
	// match f.
	ListAffiliates(ctx context.Context, tenant string, f AffiliateFilter) ([]Affiliate, int, error)
	// ReplaceAffiliate sets the writable fields of affiliate in.ID (status, tier override);
	// in.UserID and in.AffiliateCode, when not empty, must equal the stored values. The parent
	// is not touched (HierarchyService.SetUpline). Errors: NOT_FOUND, VALIDATION_FAILED
	// (user_id, affiliate_code, tier_override_id).
	ReplaceAffiliate(ctx context.Context, in Affiliate) (Affiliate, error)
	// DeleteAffiliate hides an affiliate from every read and frees its user and code: its
	// children move up to its parent and its code is deactivated and deleted. Errors:
	// NOT_FOUND.
	DeleteAffiliate(ctx context.Context, tenant string, id uuid.UUID) error
}

// AffiliateFilter selects affiliates for ListAffiliates; a nil field does not filter.
type AffiliateFilter struct {
	Status   *string
	ParentID *uuid.UUID
	UserID   *string
	Limit    int
	Offset   int
}

// HierarchyService places affiliates in the tenant's hierarchy and holds its policy (§4.8).
type HierarchyService interface {
	// SetUpline moves affiliate id under parent (nil: it becomes a root), its whole downline
	// along, and returns the affiliate. Errors: NOT_FOUND (the affiliate or the parent),
	// HIERARCHY_CYCLE.
	SetUpline(ctx context.Context, tenant string, id uuid.UUID, parent *uuid.UUID) (Affiliate, error)
	// Downline returns a page of the affiliates under affiliate id down to f.Depth levels,
	// ordered by level, creation and id, and how many there are in all. Errors: NOT_FOUND.
	Downline(ctx context.Context, tenant string, id uuid.UUID, f DownlineFilter) ([]DownlineMember, int, error)
	// GetHierarchyPolicy returns the tenant's policy. Errors: NOT_FOUND (never set).
	GetHierarchyPolicy(ctx context.Context, tenant string) (HierarchyPolicy, error)
	// PutHierarchyPolicy creates or replaces the tenant's policy and returns it. Errors:
	// VALIDATION_FAILED (HierarchyPolicy.Validate).
	PutHierarchyPolicy(ctx context.Context, p HierarchyPolicy) (HierarchyPolicy, error)
}

// DownlineFilter pages a downline read.
type DownlineFilter struct {
	// Depth is how many levels below the affiliate to include (1 = direct children).
	Depth  int
	Limit  int
	Offset int
}

// TierService stores the affiliate tier ladder (§4.6).
type TierService interface {
	// CreateTier stores a new tier built from t (its id and timestamps are assigned).
	CreateTier(ctx context.Context, t Tier) (Tier, error)
	// GetTier returns a live tier of the tenant. Errors: NOT_FOUND.
	GetTier(ctx context.Context, tenant string, id uuid.UUID) (Tier, error)
	// ListTiers returns a page of the tenant's live tiers in ladder order (the preference order
	// of EffectiveTier) and the total count.
	ListTiers(ctx context.Context, tenant string, f TierFilter) ([]Tier, int, error)
	// ReplaceTier overwrites every writable field of tier t.ID with t's. Errors: NOT_FOUND.
	ReplaceTier(ctx context.Context, t Tier) (Tier, error)
	// DeleteTier hides a tier from every read and clears the affiliates' overrides that pin
	// it. Errors: NOT_FOUND.
	DeleteTier(ctx context.Context, tenant string, id uuid.UUID) error
}

// TierFilter pages ListTiers.
type TierFilter struct {
	Limit  int
	Offset int
}

// CommissionRuleService stores commission rules (§4.7).
type CommissionRuleService interface {
	// CreateCommissionRule stores a new rule built from r (its id and timestamps are assigned).
	CreateCommissionRule(ctx context.Context, r CommissionRule) (CommissionRule, error)
	// GetCommissionRule returns a live rule of the tenant. Errors: NOT_FOUND.
	GetCommissionRule(ctx context.Context, tenant string, id uuid.UUID) (CommissionRule, error)
	// ListCommissionRules returns a page of the tenant's live rules, newest first, and how many
	// match f.
	ListCommissionRules(ctx context.Context, tenant string, f CommissionRuleFilter) ([]CommissionRule, int, error)
	// ReplaceCommissionRule overwrites every writable field of rule r.ID with r's. Errors:
	// NOT_FOUND.
	ReplaceCommissionRule(ctx context.Context, r CommissionRule) (CommissionRule, error)
	// DeleteCommissionRule hides a rule from every read; commissions naming it keep naming it.
	// Errors: NOT_FOUND.
	DeleteCommissionRule(ctx context.Context, tenant string, id uuid.UUID) error
}

// CommissionRuleFilter selects commission rules for ListCommissionRules; a nil field does not
// filter.
type CommissionRuleFilter struct {
	Active    *bool
	EventType *string
	Limit     int
	Offset    int
}

// EventService runs the platform's events through the rules of §5. The events must have
// passed CheckEvent.
type EventService interface {
	// ProcessEvent runs one event in one transaction and returns what it paid, or for an
	// event_id already used the first outcome with status "duplicate".
	ProcessEvent(ctx context.Context, ev Event) (EventOutcome, error)
	// ProcessBatch runs events of tenant, in order, in one transaction (all or nothing) and
	// returns one outcome per event, decided exactly as if they were posted one after another.
	ProcessBatch(ctx context.Context, tenant string, evs []Event) ([]EventOutcome, error)
	// Simulate answers what ProcessEvent would for ev, with status "simulated", writing nothing;
	// an event_id already used answers "duplicate" with the first outcome.
	Simulate(ctx context.Context, ev Event) (EventOutcome, error)
}

// LedgerService reads the reward and commission ledgers (§4.4, §5.5).
type LedgerService interface {
	// ListRewards returns a page of the tenant's reward ledger ordered by (created_at, id),
	// newest first unless f.Ascending, and how many rows match f.
	ListRewards(ctx context.Context, tenant string, f RewardLedgerFilter) ([]Reward, int, error)
	// ListCommissions returns a page of the tenant's commission ledger ordered by
	// (created_at, id), newest first unless f.Ascending, and how many rows match f.
	ListCommissions(ctx context.Context, tenant string, f CommissionLedgerFilter) ([]Commission, int, error)
}

// RewardLedgerFilter selects reward ledger rows; a nil field does not filter.
type RewardLedgerFilter struct {
	UserID     *string
	CampaignID *uuid.UUID
	ReferralID *uuid.UUID
	EventID    *string
	Ascending  bool // oldest first (a feed); newest first otherwise
	Limit      int
	Offset     int
}

// CommissionLedgerFilter selects commission ledger rows; a nil field does not filter.
type CommissionLedgerFilter struct {
	AffiliateID *uuid.UUID
	EventID     *string
	Level       *int
	PayoutID    *uuid.UUID // rows the payout covers (§10.3)
	State       *string    // rows in this derived state (§10.2)
	Ascending   bool       // oldest first (a feed); newest first otherwise
	Limit       int
	Offset      int
}
