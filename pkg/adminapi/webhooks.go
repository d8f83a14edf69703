package adminapi

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/outbox"
	"github.com/phoenix-referral/phoenix/pkg/referral"
	"github.com/phoenix-referral/phoenix/pkg/web"
	"github.com/phoenix-referral/phoenix/pkg/webhook"
)

// endpointReadOnly are the endpoint fields a client may read but not write.
var endpointReadOnly = []string{"id", "created_at", "updated_at", "secret"}

// endpointIn is the body of POST and PUT /v1/webhooks/endpoints.
type endpointIn struct {
	URL         *string   `json:"url"`
	Description *string   `json:"description"`
	EventTypes  *[]string `json:"event_types"`
	Active      *bool     `json:"active"`
}

// toEndpoint validates the body (SPEC §11) and fills the defaults: no description, every event
// type, active.
func (in endpointIn) toEndpoint(tenant string, allowPrivate bool) (outbox.Endpoint, error) {
	e := outbox.Endpoint{TenantID: tenant, EventTypes: []string{}, Active: true}
	if in.URL == nil {
		return e, referral.Invalid("url", "is required")
	}
	e.URL = *in.URL
	if in.Description != nil {
		e.Description = *in.Description
	}
	if in.EventTypes != nil && *in.EventTypes != nil {
		e.EventTypes = slices.Clone(*in.EventTypes)
	}
	if in.Active != nil {
		e.Active = *in.Active
	}
	return e, e.Check(allowPrivate)
}

// sealer returns the secret sealer, or UNAVAILABLE when the gateway has no PHOENIX_SECRET_KEY.
func (a *API) sealer() (*webhook.Sealer, error) {
	if a.cfg.Sealer == nil {
		return nil, referral.Errorf(referral.EUnavailable, "webhook endpoints need PHOENIX_SECRET_KEY on the Admin Gateway")
	}
	return a.cfg.Sealer, nil
}

// withSecret renders an endpoint with the secret it was just given.
func withSecret(e outbox.Endpoint, secret string) apishape.WebhookEndpointSecret {
	return apishape.WebhookEndpointSecret{WebhookEndpoint: apishape.NewWebhookEndpoint(e), Secret: secret}
}

func (a *API) createEndpoint(c echo.Context) error {
	var in endpointIn
	if err := web.Bind(c, &in, web.RejectReadOnly, endpointReadOnly...); err != nil {
		return err
	}
	e, err := in.toEndpoint(auth.TenantOf(c), a.cfg.AllowPrivateWebhooks)
	if err != nil {
		return err
	}
	sealer, err := a.sealer()
	if err != nil {
		return err
	}
	secret := webhook.NewSecret()
	out, err := a.store.CreateEndpoint(c.Request().Context(), e, sealer.Seal([]byte(secret)))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, withSecret(out, secret))
}

func (a *API) listEndpoints(c echo.Context) error {
	page, err := web.PageOf(c)
	if err != nil {
		return err
	}
	items, total, err := a.store.ListEndpoints(c.Request().Context(), auth.TenantOf(c), page.Limit, page.Offset)
	if err != nil {
		return err
	}
	return listPage(c, items, total, page, apishape.NewWebhookEndpoint)
}

func (a *API) getEndpoint(c echo.Context) error {
	return getByID(c, "endpoint_id", "webhook endpoint", a.store.GetEndpoint, apishape.NewWebhookEndpoint)
}

func (a *API) replaceEndpoint(c echo.Context) error {
	build := func(in *endpointIn, tenant string, id uuid.UUID) (outbox.Endpoint, error) {
		e, err := in.toEndpoint(tenant, a.cfg.AllowPrivateWebhooks)
		e.ID = id
		return e, err
	}
	return replaceByID(c, "endpoint_id", "webhook endpoint", endpointReadOnly, build, a.store.ReplaceEndpoint, apishape.NewWebhookEndpoint)
}

func (a *API) deleteEndpoint(c echo.Context) error {
	return deleteByID(c, "endpoint_id", "webhook endpoint", a.store.DeleteEndpoint)
}

func (a *API) rotateSecret(c echo.Context) error {
	id, err := web.PathUUID(c, "endpoint_id", "webhook endpoint")
	if err != nil {
		return err
	}
	sealer, err := a.sealer()
	if err != nil {
		return err
	}
	secret := webhook.NewSecret()
	out, err := a.store.RotateSecret(c.Request().Context(), auth.TenantOf(c), id, sealer.Seal([]byte(secret)))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, withSecret(out, secret))
}

func (a *API) testEndpoint(c echo.Context) error {
	return endpointAction(c, "endpoint_id", "webhook endpoint", a.store.SendTest)
}

func (a *API) retryDelivery(c echo.Context) error {
	return endpointAction(c, "delivery_id", "webhook delivery", a.store.RetryDelivery)
}

// endpointAction answers an action route on a resource of the tenant with the delivery it
// created or changed.
func endpointAction(c echo.Context, param, what string, act func(context.Context, string, uuid.UUID) (outbox.Delivery, error)) error {
	id, err := web.PathUUID(c, param, what)
	if err != nil {
		return err
	}
	d, err := act(c.Request().Context(), auth.TenantOf(c), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apishape.NewWebhookDelivery(d))
}

func (a *API) listDeliveries(c echo.Context) error {
	id, err := web.PathUUID(c, "endpoint_id", "webhook endpoint")
	if err != nil {
		return err
	}
	q := web.NewQuery(c)
	var status *string
	if s := q.OneOf("status", "", outbox.DeliveryStatuses...); s != "" {
		status = &s
	}
	page, err := web.PageOf(c)
	if err := referral.JoinValidation(q.Err(), err); err != nil {
		return err
	}
	items, total, err := a.store.ListDeliveries(c.Request().Context(), auth.TenantOf(c), id, status, page.Limit, page.Offset)
	if err != nil {
		return err
	}
	return listPage(c, items, total, page, apishape.NewWebhookDelivery)
}

// replayIn is the body of POST /v1/webhooks/endpoints/{endpoint_id}/replay.
type replayIn struct {
	Since *apishape.Time `json:"since"`
}

func (a *API) replayEndpoint(c echo.Context) error {
	id, err := web.PathUUID(c, "endpoint_id", "webhook endpoint")
	if err != nil {
		return err
	}
	var in replayIn
	if err := web.Bind(c, &in, web.RejectReadOnly); err != nil {
		return err
	}
	if in.Since == nil {
		return referral.Invalid("since", "is required")
	}
	out, err := a.store.Replay(c.Request().Context(), auth.TenantOf(c), id, time.Time(*in.Since))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apishape.NewWebhookReplay(out))
}

// sealedAnswers keeps the stored answers of an Idempotency-Key sealed: the answers of creating
// an endpoint and rotating its secret carry the secret, which must not lie in the database in
// the clear (SPEC §11).
type sealedAnswers struct {
	web.IdempotencyStore
	sealer *webhook.Sealer
}

// Claim opens a stored answer.
func (s sealedAnswers) Claim(ctx context.Context, tenant, caller, key string, hash []byte) (int, []byte, error) {
	status, body, err := s.IdempotencyStore.Claim(ctx, tenant, caller, key, hash)
	if err != nil || status == 0 {
		return status, body, err
	}
	plain, err := s.sealer.Open(body)
	if err != nil {
		return 0, nil, err
	}
	return status, plain, nil
}

// Complete seals the answer before it is stored.
func (s sealedAnswers) Complete(ctx context.Context, tenant, caller, key string, status int, body []byte) error {
	return s.IdempotencyStore.Complete(ctx, tenant, caller, key, status, s.sealer.Seal(body))
}
