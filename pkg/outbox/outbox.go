// Package outbox is the domain of outbound events (SPEC §11): the event catalogue, the feed
// cursor, webhook endpoints and deliveries, the retry schedule and the rules that decide over
// them. It is pure Go, like pkg/referral: storage (pkg/postgres) writes and reads what it
// describes, pkg/webhook delivers it, pkg/adminapi serves it.
package outbox

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// The event types of SPEC §11. Each is published by the write named in its comment, in the
// same transaction as that write.
const (
	// ReferralCreated: every new referral (apply-code), a held one too.
	ReferralCreated = "referral.created"
	// ReferralConverted: a referral moved from pending to converted by an event.
	ReferralConverted = "referral.converted"
	// ReferralStatusChanged: every other status change of a referral.
	ReferralStatusChanged = "referral.status_changed"
	// ReferralHeld: apply-code put the referral on hold (§12).
	ReferralHeld = "referral.held"
	// ReferralReviewed: a review decision on a held referral (§12).
	ReferralReviewed = "referral.reviewed"
	// RewardCreated: one per reward ledger row, negative rows included.
	RewardCreated = "reward.created"
	// CommissionCreated: one per commission ledger row, negative rows included.
	CommissionCreated = "commission.created"
	// AffiliateCreated, AffiliateUpdated, AffiliateDeleted: the affiliate's own writes.
	AffiliateCreated = "affiliate.created"
	AffiliateUpdated = "affiliate.updated"
	AffiliateDeleted = "affiliate.deleted"
	// AffiliateTierChanged: the affiliate's effective tier changed because of an event, a
	// reversal or its override (editing the ladder itself publishes nothing per affiliate).
	AffiliateTierChanged = "affiliate.tier_changed"
	// MilestoneReached: a referrer reached a milestone (§13).
	MilestoneReached = "milestone.reached"
	// PayoutCreated, PayoutStatusChanged: payouts (§10.3).
	PayoutCreated       = "payout.created"
	PayoutStatusChanged = "payout.status_changed"
	// WebhookTest: sent to one endpoint by POST /v1/webhooks/endpoints/{id}/test.
	WebhookTest = "webhook.test"
)

// Types lists every event type, in catalogue order.
var Types = []string{ReferralCreated, ReferralConverted, ReferralStatusChanged, ReferralHeld,
	ReferralReviewed, RewardCreated, CommissionCreated, AffiliateCreated, AffiliateUpdated,
	AffiliateDeleted, AffiliateTierChanged, MilestoneReached, PayoutCreated, PayoutStatusChanged,
	WebhookTest}

// ValidType reports whether t is an event type of the catalogue.
func ValidType(t string) bool { return slices.Contains(Types, t) }

// Event is one outbound event: the envelope of SPEC §11 with its data as the API renders it.
type Event struct {
	ID       uuid.UUID
	TenantID string
	Type     string
	// Data is the JSON snapshot of the object at commit.
	Data json.RawMessage
	// CreatedAt is the publishing transaction's time.
	CreatedAt time.Time
}

// Message is what a write publishes: a type and the object (an apishape value) as data.
type Message struct {
	Type string
	Data any
}

// FeedLimit bounds a feed page (SPEC §11: 1–500, default 100).
const (
	FeedDefaultLimit = 100
	FeedMaxLimit     = 500
)

// Cursor is a position in a tenant's feed, in the projector's terms (SPEC §7): Seen is a
// PostgreSQL snapshot ("xmin:xmax:xip,…") every event of whose completed transactions has been
// read ("" = none yet). The next events are those of the transactions that completed after Seen,
// read as one window bounded by a later snapshot, Window, in (transaction id, sequence) order; a
// page that ends inside the window keeps Window and the last event read (Xid, Seq). A window
// holds only transactions that had ended when it was taken, so a transaction committing late
// falls into a later window: never skipped, never read twice.
type Cursor struct {
	Seen   string
	Window string
	Xid    uint64
	Seq    int64
}

// String renders the cursor as it travels in next_cursor and ?after= (opaque to clients).
func (c Cursor) String() string {
	raw := c.Seen + ";" + c.Window + ";" + strconv.FormatUint(c.Xid, 10) + ";" + strconv.FormatInt(c.Seq, 10)
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// CursorHead is the ?after= value that means "only what commits from now on".
const CursorHead = "head"

// MaxCursor bounds a cursor's length (two snapshots; a snapshot lists the transactions running
// when it was taken).
const MaxCursor = 16 << 10

// ParseCursor reads a cursor rendered by String; its snapshots must be well-formed, so no
// client-made cursor reaches PostgreSQL malformed. Errors: VALIDATION_FAILED (after).
func ParseCursor(s string) (Cursor, error) {
	bad := referral.Invalid("after", "must be a next_cursor value or head")
	if len(s) > MaxCursor {
		return Cursor{}, bad
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, bad
	}
	parts := strings.Split(string(raw), ";")
	if len(parts) != 4 {
		return Cursor{}, bad
	}
	xid, err1 := strconv.ParseUint(parts[2], 10, 64)
	seq, err2 := strconv.ParseInt(parts[3], 10, 64)
	c := Cursor{Seen: parts[0], Window: parts[1], Xid: xid, Seq: seq}
	if err1 != nil || err2 != nil || seq < 0 || (c.Seen != "" && !ValidSnapshot(c.Seen)) ||
		(c.Window != "" && !ValidSnapshot(c.Window)) || (c.Window == "" && (xid != 0 || seq != 0)) {
		return Cursor{}, bad
	}
	return c, nil
}

// ValidSnapshot reports whether s is a pg_snapshot PostgreSQL accepts: "xmin:xmax:xip,…" with
// 1 ≤ xmin ≤ xmax and the in-progress ids ascending within [xmin, xmax).
func ValidSnapshot(s string) bool {
	f := strings.Split(s, ":")
	if len(f) != 3 {
		return false
	}
	xmin, err1 := strconv.ParseUint(f[0], 10, 64)
	xmax, err2 := strconv.ParseUint(f[1], 10, 64)
	if err1 != nil || err2 != nil || xmin < 1 || xmin > xmax || xmax > 1<<62 {
		return false
	}
	if f[2] == "" {
		return true
	}
	prev := uint64(0)
	for i, x := range strings.Split(f[2], ",") {
		v, err := strconv.ParseUint(x, 10, 64)
		if err != nil || v < xmin || v >= xmax || (i > 0 && v <= prev) {
			return false
		}
		prev = v
	}
	return true
}

// ExpiredCursor is the answer to a cursor older than the retention (SPEC §11).
func ExpiredCursor() error {
	return referral.Invalid("after", "the cursor has expired: its events are past the outbox retention; restart from a rebuild")
}

// FeedFilter selects a feed page.
type FeedFilter struct {
	// After is the cursor to continue from; nil: the oldest event kept.
	After *Cursor
	// Head, when set, starts at the current head instead of After.
	Head bool
	// Types keeps only these types (empty: all).
	Types []string
	// Limit is 1–FeedMaxLimit.
	Limit int
}

// FeedPage is a page of the feed and the cursor after it.
type FeedPage struct {
	Events []Event
	Next   Cursor
}

// Endpoint is a webhook endpoint. Its secret never travels with it: it is sealed in storage and
// shown once, when created or rotated.
type Endpoint struct {
	ID          uuid.UUID
	TenantID    string
	URL         string
	Description string
	// EventTypes are the types delivered to it (empty: all but webhook.test, which goes only to
	// the endpoint it is sent to).
	EventTypes []string
	Active     bool
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// MaxDescription bounds an endpoint's description, in characters; MaxURL its URL, in bytes.
const (
	MaxDescription = 1000
	MaxURL         = 2048
)

// Check validates an endpoint's writable fields (SPEC §11): an absolute https URL (http too
// when allowPrivate: development and tests), known and distinct event types, a bounded
// description. Where the URL points is checked again at every delivery (pkg/webhook).
// Errors: VALIDATION_FAILED.
func (e Endpoint) Check(allowPrivate bool) error {
	fe := referral.FieldErrors{}
	u, err := url.Parse(e.URL)
	switch {
	case e.URL == "" || len(e.URL) > MaxURL || !utf8.ValidString(e.URL):
		fe.Add("url", fmt.Sprintf("must be an absolute https URL of at most %d bytes", MaxURL))
	case err != nil || u.Host == "" || u.Hostname() == "" || u.Opaque != "":
		fe.Add("url", "must be an absolute https URL")
	case u.User != nil:
		fe.Add("url", "must not carry credentials")
	case u.Fragment != "":
		fe.Add("url", "must not carry a fragment")
	case u.Scheme != "https" && !(allowPrivate && u.Scheme == "http"):
		fe.Add("url", "must use https")
	}
	if utf8.RuneCountInString(e.Description) > MaxDescription || strings.ContainsRune(e.Description, 0) {
		fe.Add("description", fmt.Sprintf("must be at most %d characters, without NUL", MaxDescription))
	}
	seen := map[string]bool{}
	for _, t := range e.EventTypes {
		switch {
		case !ValidType(t):
			fe.Add("event_types", "unknown event type "+strconv.Quote(t))
		case seen[t]:
			fe.Add("event_types", "lists "+strconv.Quote(t)+" twice")
		}
		seen[t] = true
	}
	return fe.Err()
}

// Wants reports whether the endpoint receives events of type t by subscription (webhook.test
// is sent to one endpoint directly, never by subscription).
func (e Endpoint) Wants(t string) bool {
	return t != WebhookTest && (len(e.EventTypes) == 0 || slices.Contains(e.EventTypes, t))
}

// The statuses of a delivery. Cancelled deliveries (their endpoint was deleted) are never
// listed.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
	DeliveryCancelled = "cancelled"
)

// DeliveryStatuses are the statuses a delivery list filters by.
var DeliveryStatuses = []string{DeliveryPending, DeliveryDelivered, DeliveryFailed}

// Delivery is one event's delivery to one endpoint, with its attempts.
type Delivery struct {
	ID         uuid.UUID
	TenantID   string
	EndpointID uuid.UUID
	EventID    uuid.UUID
	EventType  string
	Status     string
	// NextAt is when a pending delivery is next attempted.
	NextAt    *time.Time
	Attempts  []Attempt
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Attempt is one delivery attempt.
type Attempt struct {
	At time.Time
	// StatusCode is the receiver's HTTP status (nil: no answer).
	StatusCode *int
	Duration   time.Duration
	// Error says why the attempt failed (nil: a 2xx).
	Error *string
	// ResponseExcerpt is the start of the receiver's body, at most MaxExcerpt bytes.
	ResponseExcerpt *string
}

// MaxExcerpt is how much of a receiver's answer is read and kept (SPEC §11: 1 KiB).
const MaxExcerpt = 1024

// AttemptTimeout is how long a receiver has to answer (SPEC §11).
const AttemptTimeout = 10 * time.Second

// Schedule is the retry schedule of SPEC §11: the pause after each failed attempt. A delivery
// whose attempts all failed (one plus one per pause) is failed.
var Schedule = []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour,
	5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// Jitter is the spread of a retry pause: ±10 %, so receivers recovering from an outage are not
// hit by every delivery at once.
const Jitter = 0.10

// Retry decides after the attempts-th failed attempt (1 for the first) of a delivery under
// schedule: it returns the pause before the next attempt, jittered, or false when the delivery
// has failed for good. u, uniform in [0, 1), places the pause within the jitter.
func Retry(schedule []time.Duration, attempts int, u float64) (time.Duration, bool) {
	if attempts < 1 || attempts > len(schedule) {
		return 0, false
	}
	return time.Duration(float64(schedule[attempts-1]) * (1 + Jitter*(2*u-1))), true
}

// DeactivateAfter is how long an endpoint may fail every attempt before it is deactivated.
const DeactivateAfter = 5 * 24 * time.Hour

// Deactivate reports whether an endpoint failing every attempt since failingSince is to be
// deactivated at now.
func Deactivate(failingSince *time.Time, now time.Time) bool {
	return failingSince != nil && now.Sub(*failingSince) >= DeactivateAfter
}

// RotationOverlap is how long the previous secret keeps signing after a rotation.
const RotationOverlap = 24 * time.Hour

// DefaultRetention is PHOENIX_OUTBOX_RETENTION's default: how long events are kept.
const DefaultRetention = 30 * 24 * time.Hour

// Lease is a delivery a dispatcher holds: what it posts and the token it reports back with.
type Lease struct {
	DeliveryID uuid.UUID
	Token      uuid.UUID
	EndpointID uuid.UUID
	URL        string
	// Secrets are the endpoint's sealed signing secrets: the current one, then the previous one
	// while it still signs.
	Secrets [][]byte
	Event   Event
	// Attempts is how many attempts the delivery has had before this one.
	Attempts int
	// Until is when the lease ends; after it another dispatcher may take the delivery.
	Until time.Time
}

// Recorded is an attempt to record: the lease it was made under and its outcome.
type Recorded struct {
	Lease   Lease
	Outcome AttemptOutcome
}

// AttemptOutcome is what a dispatcher reports of one attempt.
type AttemptOutcome struct {
	Attempt Attempt
	// Delivered: the receiver answered 2xx in time.
	Delivered bool
}

// FeedService is the outbox feed. pkg/postgres's Store implements it.
type FeedService interface {
	// Feed returns a page of the tenant's events after f.After (or from the head) in
	// transaction order, only of transactions that have ended, and the cursor to continue
	// from. Errors: VALIDATION_FAILED (after: expired).
	Feed(ctx context.Context, tenant string, f FeedFilter) (FeedPage, error)
}

// EndpointService manages webhook endpoints and their deliveries. Secrets cross it sealed.
type EndpointService interface {
	// CreateEndpoint stores e (id and times assigned) with its sealed secret.
	CreateEndpoint(ctx context.Context, e Endpoint, sealed []byte) (Endpoint, error)
	// GetEndpoint returns a live endpoint of the tenant. Errors: NOT_FOUND.
	GetEndpoint(ctx context.Context, tenant string, id uuid.UUID) (Endpoint, error)
	// ListEndpoints returns a page of the tenant's live endpoints, newest first, and the total.
	ListEndpoints(ctx context.Context, tenant string, limit, offset int) ([]Endpoint, int, error)
	// ReplaceEndpoint overwrites e.ID's writable fields. Errors: NOT_FOUND.
	ReplaceEndpoint(ctx context.Context, e Endpoint) (Endpoint, error)
	// DeleteEndpoint hides the endpoint and cancels its pending deliveries. Errors: NOT_FOUND.
	DeleteEndpoint(ctx context.Context, tenant string, id uuid.UUID) error
	// RotateSecret makes sealed the endpoint's secret; the previous one keeps signing for
	// RotationOverlap. Errors: NOT_FOUND.
	RotateSecret(ctx context.Context, tenant string, id uuid.UUID, sealed []byte) (Endpoint, error)
	// SendTest publishes a webhook.test event to the endpoint alone and returns its delivery.
	// Errors: NOT_FOUND.
	SendTest(ctx context.Context, tenant string, id uuid.UUID) (Delivery, error)
	// ListDeliveries returns a page of the endpoint's deliveries (status: one of
	// DeliveryStatuses, or all), newest first, and the total. Errors: NOT_FOUND.
	ListDeliveries(ctx context.Context, tenant string, endpoint uuid.UUID, status *string, limit, offset int) ([]Delivery, int, error)
	// RetryDelivery makes a failed or pending delivery due now. Errors: NOT_FOUND,
	// INVALID_TRANSITION (delivered).
	RetryDelivery(ctx context.Context, tenant string, id uuid.UUID) (Delivery, error)
	// Replay creates a new delivery to the endpoint of each of its events since since.
	// Errors: NOT_FOUND, VALIDATION_FAILED (since: past the retention).
	Replay(ctx context.Context, tenant string, endpoint uuid.UUID, since time.Time) (ReplayResult, error)
}

// ReplayResult says what a replay queued.
type ReplayResult struct {
	EndpointID uuid.UUID
	Since      time.Time
	Queued     int
}
