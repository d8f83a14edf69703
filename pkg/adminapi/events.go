package adminapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/referral"
	"github.com/phoenix-referral/phoenix/pkg/web"
)

// eventIn is the body of POST /v1/events and /v1/affiliate/simulate, and one item of a batch.
// Fields are pointers so that absent and null read as "missing"; occurred_at is parsed by hand
// so its error names the expected format.
type eventIn struct {
	EventID    *string         `json:"event_id"`
	Type       *string         `json:"type"`
	UserID     *string         `json:"user_id"`
	OccurredAt *string         `json:"occurred_at"`
	Payload    json.RawMessage `json:"payload"`
	// Reverses and ReverseAmount make the event a reversal (§10.1).
	Reverses      *string         `json:"reverses"`
	ReverseAmount json.RawMessage `json:"reverse_amount"`
}

// toEvent validates the body (SPEC §5) received at now and fills the defaults: occurred_at is
// now, payload is {}.
func (in eventIn) toEvent(tenant string, now time.Time) (referral.Event, error) {
	ev := referral.Event{TenantID: tenant, OccurredAt: now}
	fe := referral.FieldErrors{}
	for _, f := range []struct {
		name string
		in   *string
		out  *string
	}{{"event_id", in.EventID, &ev.EventID}, {"type", in.Type, &ev.Type}, {"user_id", in.UserID, &ev.UserID}} {
		if f.in == nil {
			fe.Add(f.name, "is required")
			continue
		}
		*f.out = *f.in
	}
	if in.OccurredAt != nil {
		t, err := time.Parse(time.RFC3339Nano, *in.OccurredAt)
		if err != nil {
			fe.Add("occurred_at", "must be an RFC 3339 time")
		} else {
			ev.OccurredAt = t.UTC().Truncate(time.Microsecond)
		}
	}
	ev.Payload = json.RawMessage("{}")
	if p := bytes.TrimSpace(in.Payload); len(p) > 0 && string(p) != "null" {
		if p[0] != '{' {
			fe.Add("payload", "must be a JSON object")
		} else {
			var compact bytes.Buffer
			if err := json.Compact(&compact, p); err != nil {
				fe.Add("payload", "must be a JSON object")
			}
			ev.Payload = compact.Bytes()
		}
	}
	in.reversal(&ev, fe)
	if err := referral.CheckEvent(ev, now); err != nil {
		var de *referral.Error
		if errors.As(err, &de) {
			for k, v := range de.Fields {
				fe.Add(k, v)
			}
		}
	}
	return ev, fe.Err()
}

// eventBatchIn is the body of POST /v1/events/batch; items are decoded one by one so a bad item
// is rejected alone.
type eventBatchIn struct {
	Events *web.Items `json:"events"`
}

// eventBatch is a batch body after validation: the valid events in order, the position of each
// in the batch, and one result per item, already filled in for the rejected ones.
type eventBatch struct {
	events  []referral.Event
	at      []int
	results []any
}

// decodeBatch reads the body of POST /v1/events/batch received at now. A body that cannot be
// read as a batch is an error; an item that is not a valid event (hostile text included) is
// rejected alone and the others are kept.
func decodeBatch(body []byte, tenant string, now time.Time) (eventBatch, error) {
	var in eventBatchIn
	if err := web.Decode(body, &in, web.RejectReadOnly); err != nil {
		return eventBatch{}, err
	}
	if in.Events == nil {
		return eventBatch{}, referral.Invalid("events", "is required")
	}
	items := *in.Events
	if len(items) > referral.MaxEventBatch {
		return eventBatch{}, referral.Invalid("events", "at most "+strconv.Itoa(referral.MaxEventBatch)+" events")
	}
	b := eventBatch{results: make([]any, len(items))}
	for i, raw := range items {
		var ein eventIn
		err := web.Decode(raw, &ein, web.RejectReadOnly)
		var ev referral.Event
		if err == nil {
			ev, err = ein.toEvent(tenant, now)
		}
		if err != nil {
			b.results[i] = rejectedEvent(raw, err)
			continue
		}
		b.events = append(b.events, ev)
		b.at = append(b.at, i)
	}
	return b, nil
}

// receivedAt is when the request arrived, the default occurred_at.
func (a *API) receivedAt() time.Time {
	return a.Now().UTC().Truncate(time.Microsecond)
}

// postEvent is POST /v1/events.
func (a *API) postEvent(c echo.Context) error {
	var in eventIn
	if err := web.Bind(c, &in, web.RejectReadOnly); err != nil {
		return err
	}
	ev, err := in.toEvent(auth.TenantOf(c), a.receivedAt())
	if err != nil {
		return err
	}
	out, err := a.store.ProcessEvent(c.Request().Context(), ev)
	if err != nil {
		return err
	}
	if out.Err != nil {
		return out.Err
	}
	a.metrics.countReversals(out)
	return c.JSON(http.StatusOK, apishape.NewEventOutcome(out))
}

// postEventBatch is POST /v1/events/batch.
func (a *API) postEventBatch(c echo.Context) error {
	body, err := web.ReadBody(c)
	if err != nil {
		return err
	}
	tenant := auth.TenantOf(c)
	b, err := decodeBatch(body, tenant, a.receivedAt())
	if err != nil {
		return err
	}
	outs, err := a.store.ProcessBatch(c.Request().Context(), tenant, b.events)
	if err != nil {
		return err
	}
	for k, o := range outs {
		if o.Err != nil {
			id := o.EventID
			b.results[b.at[k]] = apishape.RejectedEvent{EventID: &id, Status: referral.EventRejected, Error: apishape.NewErrorDetail(o.Err)}
			continue
		}
		a.metrics.countReversals(o)
		b.results[b.at[k]] = apishape.NewEventOutcome(o)
	}
	return c.JSON(http.StatusOK, apishape.EventBatchResult{Results: b.results})
}

// rejectedEvent reports a batch item's validation failure, naming its event_id when the item
// carries one under that exact key that is a string fit to echo (never one U+FFFD altered).
func rejectedEvent(raw json.RawMessage, err error) apishape.RejectedEvent {
	out := apishape.RejectedEvent{Status: referral.EventRejected}
	var de *referral.Error
	if !errors.As(err, &de) {
		de = referral.Errorf(referral.EValidation, "invalid event")
	}
	out.Error = apishape.NewErrorDetail(de)
	var probe map[string]json.RawMessage
	if json.Unmarshal(raw, &probe) != nil || web.CheckJSON(probe["event_id"], "event_id") != nil {
		return out
	}
	var id string
	if json.Unmarshal(probe["event_id"], &id) == nil && id != "" {
		out.EventID = &id
	}
	return out
}

// simulateEvent is POST /v1/affiliate/simulate: what POST /v1/events would answer, writing
// nothing.
func (a *API) simulateEvent(c echo.Context) error {
	var in eventIn
	if err := web.Bind(c, &in, web.RejectReadOnly); err != nil {
		return err
	}
	ev, err := in.toEvent(auth.TenantOf(c), a.receivedAt())
	if err != nil {
		return err
	}
	out, err := a.store.Simulate(c.Request().Context(), ev)
	if err != nil {
		return err
	}
	if out.Err != nil {
		return out.Err
	}
	return c.JSON(http.StatusOK, apishape.NewEventOutcome(out))
}

// listRewards is GET /v1/referral/rewards: the reward ledger.
func (a *API) listRewards(c echo.Context) error {
	q := web.NewQuery(c)
	f := referral.RewardLedgerFilter{
		UserID:     q.String("user_id"),
		CampaignID: q.UUID("campaign_id"),
		ReferralID: q.UUID("referral_id"),
		EventID:    q.String("event_id"),
		Ascending:  q.OneOf("order", "desc", "desc", "asc") == "asc",
	}
	page, perr := web.PageOf(c)
	if err := errors.Join(q.Err(), perr); err != nil {
		return mergeValidation(err)
	}
	f.Limit, f.Offset = page.Limit, page.Offset
	items, total, err := a.store.ListRewards(c.Request().Context(), auth.TenantOf(c), f)
	if err != nil {
		return err
	}
	return listPage(c, items, total, page, apishape.NewReward)
}

// listCommissions is GET /v1/affiliate/commissions: the commission ledger.
func (a *API) listCommissions(c echo.Context) error {
	q := web.NewQuery(c)
	f := referral.CommissionLedgerFilter{
		AffiliateID: q.UUID("affiliate_id"),
		EventID:     q.String("event_id"),
		Level:       q.Int("level", 0, referral.MaxPolicyDepth),
		Ascending:   q.OneOf("order", "desc", "desc", "asc") == "asc",
		PayoutID:    q.UUID("payout_id"),
		State:       oneOfOrNil(q, "state", referral.CommissionStates),
	}
	page, perr := web.PageOf(c)
	if err := errors.Join(q.Err(), perr); err != nil {
		return mergeValidation(err)
	}
	f.Limit, f.Offset = page.Limit, page.Offset
	items, total, err := a.store.ListCommissions(c.Request().Context(), auth.TenantOf(c), f)
	if err != nil {
		return err
	}
	return listPage(c, items, total, page, apishape.NewCommission)
}

// mergeValidation folds the VALIDATION_FAILED errors joined in err into one, so every bad query
// parameter is named.
func mergeValidation(err error) error {
	fe := referral.FieldErrors{}
	var collect func(error)
	collect = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				collect(x)
			}
			return
		}
		var de *referral.Error
		if errors.As(e, &de) {
			for k, v := range de.Fields {
				fe.Add(k, v)
			}
		}
	}
	collect(err)
	if len(fe) == 0 {
		return err
	}
	return fe.Err()
}
