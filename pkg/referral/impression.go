package referral

import (
	"cmp"
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Impressions and attribution (§15): a click or scan of a referral code, and the link from the
// referral it led to.

// MaxImpressionMetadataBytes bounds the metadata of an impression, compacted (§15).
const MaxImpressionMetadataBytes = 1 << 10

// DefaultImpressionTTL is how old an impression may be and still be linked to a referral
// (PHOENIX_IMPRESSION_TTL); DefaultImpressionRetention is how long impressions are kept
// (PHOENIX_IMPRESSION_RETENTION).
const (
	DefaultImpressionTTL       = 30 * 24 * time.Hour
	DefaultImpressionRetention = 180 * 24 * time.Hour
)

// ImpressionBucket is the width of the impression counters (one per code, source and UTC day):
// the funnel and the stats count the impressions of every bucket that overlaps their period. A
// day keeps the buckets of a period few whatever the number of impressions (a 30-day funnel reads
// at most 31 per code and source).
const ImpressionBucket = 24 * time.Hour

var sourcePattern = regexp.MustCompile(`^[a-z0-9_.-]{1,64}$`)

// ValidSource reports whether s follows the grammar of an impression's source: 1–64 characters
// of [a-z0-9_.-] (e.g. poster_qr_code).
func ValidSource(s string) bool { return sourcePattern.MatchString(s) }

// ImpressionValid reports whether an impression of code at now counts: the visitor's check of
// §6 (the code exists, is active, has not expired and is not exhausted). A nil code does not
// exist in the tenant. Storage asks its SQL form, phoenix_code_valid (migration 00009), which a
// test holds to this answer.
func ImpressionValid(code *Code, now time.Time) bool {
	return CheckApply(code, "", ApplyFacts{}, now) == nil
}

// ImpressionBucketStart is the start of the counter bucket holding an impression made at t, in
// UTC.
func ImpressionBucketStart(t time.Time) time.Time { return t.UTC().Truncate(ImpressionBucket) }

// Impression is a recorded click or scan of a valid code (§15).
type Impression struct {
	ID       uuid.UUID
	TenantID string
	CodeID   uuid.UUID
	// Source is where the impression came from (nil: not said).
	Source *string
	// AddressHash is the client address under AddressHash; nil when the platform reported the
	// impression with its service token.
	AddressHash []byte
	Metadata    json.RawMessage
	CreatedAt   time.Time
	// ReferralID is the referral the impression is linked to, once one is.
	ReferralID *uuid.UUID
}

// CanLink reports whether a referral made with code codeID at now is linked to impression imp
// (§15): the impression is of the same code, at most ttl old, and not linked to a referral yet.
// Anything else creates the referral unlinked: an impression never blocks a referral.
func CanLink(imp Impression, codeID uuid.UUID, now time.Time, ttl time.Duration) bool {
	return imp.CodeID == codeID && imp.ReferralID == nil && now.Sub(imp.CreatedAt) <= ttl
}

// NewImpression is an impression to record: the code as the client sent it, already
// normalised, and what describes the click.
type NewImpression struct {
	TenantID    string
	Code        string
	Source      *string
	AddressHash []byte
	// Metadata is a compacted JSON object (default {}).
	Metadata json.RawMessage
}

// RecordedImpression is the outcome of recording an impression: Valid per ImpressionValid, and
// the impression's id when it was valid (an impression of an unknown, inactive, expired or
// exhausted code records nothing).
type RecordedImpression struct {
	ID    *uuid.UUID
	Valid bool
}

// FunnelFilter selects what a funnel counts; a nil field does not filter.
type FunnelFilter struct {
	Period Period
	// CampaignID keeps referrals of that campaign and impressions of codes bound to it.
	CampaignID *uuid.UUID
	// Code keeps the impressions and referrals of one code string (normalised).
	Code *string
}

// Funnel is the path from impressions to successful referrals within a period (§15).
type Funnel struct {
	Impressions     int64
	Referrals       int64
	LinkedReferrals int64
	Successful      int64
	// BySource breaks the counts down by the source of the impression (a referral's source is
	// that of its linked impression); a nil Source holds impressions without one and unlinked
	// referrals. Ordered by impressions descending, then source, the nil source last among equals.
	BySource []FunnelSource
}

// FunnelSource is one source's share of a funnel.
type FunnelSource struct {
	Source      *string
	Impressions int64
	Referrals   int64
	Successful  int64
}

// FunnelOf assembles a funnel from its breakdown by source (at most one entry per source) and
// the number of linked referrals: the totals are the sums of the breakdown, which is ordered as
// Funnel.BySource says.
func FunnelOf(bySource []FunnelSource, linked int64) Funnel {
	f := Funnel{LinkedReferrals: linked, BySource: slices.Clone(bySource)}
	for _, s := range f.BySource {
		f.Impressions += s.Impressions
		f.Referrals += s.Referrals
		f.Successful += s.Successful
	}
	slices.SortFunc(f.BySource, func(a, b FunnelSource) int {
		if c := cmp.Compare(b.Impressions, a.Impressions); c != 0 {
			return c
		}
		if a.Source == nil || b.Source == nil {
			return cmp.Compare(boolInt(a.Source == nil), boolInt(b.Source == nil))
		}
		return strings.Compare(*a.Source, *b.Source)
	})
	if f.BySource == nil {
		f.BySource = []FunnelSource{}
	}
	return f
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ImpressionService records impressions and counts them (§15). Impressions are linked to
// referrals by ReferralService.ApplyCode.
type ImpressionService interface {
	// RecordImpression records an impression of in.Code when ImpressionValid says it counts now,
	// durably before it returns, and counts it in the impression counters.
	RecordImpression(ctx context.Context, in NewImpression) (RecordedImpression, error)
	// Funnel counts the tenant's impressions and referrals per f.
	Funnel(ctx context.Context, tenant string, f FunnelFilter) (Funnel, error)
	// CodeImpressions counts every impression recorded of a live code of the tenant. Errors:
	// NOT_FOUND.
	CodeImpressions(ctx context.Context, tenant string, codeID uuid.UUID) (int64, error)
	// PruneImpressions deletes impressions older than retention in batches of at most batch rows
	// and returns how many it deleted. The counters keep counting them.
	PruneImpressions(ctx context.Context, retention time.Duration, batch int) (int64, error)
}
