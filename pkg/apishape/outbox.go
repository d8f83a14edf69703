package apishape

import (
	"encoding/json"

	"github.com/google/uuid"

	"github.com/phoenix-referral/phoenix/pkg/outbox"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// OutboxEvent is the envelope of an outbound event (SPEC §11), in the feed and in a webhook's
// body alike.
type OutboxEvent struct {
	ID        uuid.UUID       `json:"id"`
	Type      string          `json:"type"`
	TenantID  string          `json:"tenant_id"`
	Timestamp Time            `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// NewOutboxEvent converts an event.
func NewOutboxEvent(e outbox.Event) OutboxEvent {
	return OutboxEvent{ID: e.ID, Type: e.Type, TenantID: e.TenantID, Timestamp: Time(e.CreatedAt), Data: e.Data}
}

// OutboxFeed is a page of GET /v1/outbox.
type OutboxFeed struct {
	Items      []OutboxEvent `json:"items"`
	NextCursor string        `json:"next_cursor"`
}

// NewOutboxFeed converts a feed page.
func NewOutboxFeed(p outbox.FeedPage) OutboxFeed {
	return OutboxFeed{Items: Slice(p.Events, NewOutboxEvent), NextCursor: p.Next.String()}
}

// AffiliateTierChange is the data of affiliate.tier_changed: the affiliate and the effective
// tier it had before.
type AffiliateTierChange struct {
	Affiliate
	PreviousTierID *uuid.UUID `json:"previous_tier_id"`
}

// NewTierChange converts an affiliate whose effective tier was previous.
func NewTierChange(a referral.Affiliate, previous *uuid.UUID) AffiliateTierChange {
	return AffiliateTierChange{Affiliate: NewAffiliate(a), PreviousTierID: previous}
}

// WebhookEndpoint is a webhook endpoint (SPEC §11); its secret is never part of it.
type WebhookEndpoint struct {
	ID          uuid.UUID `json:"id"`
	URL         string    `json:"url"`
	Description string    `json:"description"`
	EventTypes  []string  `json:"event_types"`
	Active      bool      `json:"active"`
	CreatedAt   Time      `json:"created_at"`
	UpdatedAt   Time      `json:"updated_at"`
}

// NewWebhookEndpoint converts an endpoint.
func NewWebhookEndpoint(e outbox.Endpoint) WebhookEndpoint {
	types := e.EventTypes
	if types == nil {
		types = []string{}
	}
	return WebhookEndpoint{ID: e.ID, URL: e.URL, Description: e.Description, EventTypes: types,
		Active: e.Active, CreatedAt: Time(e.CreatedAt), UpdatedAt: Time(e.UpdatedAt)}
}

// WebhookEndpointSecret is the answer of creating an endpoint or rotating its secret: the only
// time the secret is shown.
type WebhookEndpointSecret struct {
	WebhookEndpoint
	Secret string `json:"secret"`
}

// WebhookAttempt is one delivery attempt.
type WebhookAttempt struct {
	At              Time    `json:"at"`
	StatusCode      *int    `json:"status_code"`
	DurationMS      int64   `json:"duration_ms"`
	Error           *string `json:"error"`
	ResponseExcerpt *string `json:"response_excerpt"`
}

// WebhookDelivery is an event's delivery to an endpoint, with its attempts, oldest first.
type WebhookDelivery struct {
	ID            uuid.UUID        `json:"id"`
	EndpointID    uuid.UUID        `json:"endpoint_id"`
	EventID       uuid.UUID        `json:"event_id"`
	EventType     string           `json:"event_type"`
	Status        string           `json:"status"`
	NextAttemptAt *Time            `json:"next_attempt_at"`
	Attempts      []WebhookAttempt `json:"attempts"`
	CreatedAt     Time             `json:"created_at"`
	UpdatedAt     Time             `json:"updated_at"`
}

// NewWebhookDelivery converts a delivery.
func NewWebhookDelivery(d outbox.Delivery) WebhookDelivery {
	return WebhookDelivery{ID: d.ID, EndpointID: d.EndpointID, EventID: d.EventID, EventType: d.EventType,
		Status: d.Status, NextAttemptAt: TimePtr(d.NextAt), CreatedAt: Time(d.CreatedAt), UpdatedAt: Time(d.UpdatedAt),
		Attempts: Slice(d.Attempts, func(a outbox.Attempt) WebhookAttempt {
			return WebhookAttempt{At: Time(a.At), StatusCode: a.StatusCode, DurationMS: a.Duration.Milliseconds(),
				Error: a.Error, ResponseExcerpt: a.ResponseExcerpt}
		})}
}

// WebhookReplay is the answer of a replay: how many deliveries it queued.
type WebhookReplay struct {
	EndpointID uuid.UUID `json:"endpoint_id"`
	Since      Time      `json:"since"`
	Queued     int       `json:"queued"`
}

// NewWebhookReplay converts a replay's result.
func NewWebhookReplay(r outbox.ReplayResult) WebhookReplay {
	return WebhookReplay{EndpointID: r.EndpointID, Since: Time(r.Since), Queued: r.Queued}
}

// MilestoneReached is the data of milestone.reached (SPEC §11, §13): the milestone a referrer
// reached in a campaign and the reward rows it paid.
type MilestoneReached struct {
	CampaignID          uuid.UUID   `json:"campaign_id"`
	UserID              string      `json:"user_id"`
	SuccessfulReferrals int         `json:"successful_referrals"`
	RewardIDs           []uuid.UUID `json:"reward_ids"`
}
