package adminapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/referral"
	"github.com/phoenix-referral/phoenix/pkg/web"
)

// DeviceIDHeader carries a player's device id when the token has no device_id claim (§12).
const DeviceIDHeader = "X-Device-Id"

// riskMetrics counts apply-code's risk decisions by action and reason (§12).
type riskMetrics struct {
	decisions *prometheus.CounterVec
}

func newRiskMetrics() riskMetrics {
	return riskMetrics{decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "phoenix_risk_decisions_total",
		Help: "Apply-code risk decisions by action (allow, hold, reject) and matched reason (same_device, same_address, velocity; none for an allow with nothing matched).",
	}, []string{"action", "reason"})}
}

// Collectors returns the API's own metrics, for the server's registry.
func (a *API) Collectors() []prometheus.Collector {
	return append([]prometheus.Collector{a.risk.decisions, a.impressions}, a.metrics.collectors()...)
}

// noteRisk logs and counts the risk decision of an apply-code that answered ref or err: a reject
// (whose reasons the client never sees), a hold, or an allow. Other failures decided nothing.
func (a *API) noteRisk(c echo.Context, ref referral.Referral, err error) {
	count := func(action string, reasons []string) {
		if len(reasons) == 0 {
			a.risk.decisions.WithLabelValues(action, "none").Inc()
		}
		for _, r := range reasons {
			a.risk.decisions.WithLabelValues(action, r).Inc()
		}
	}
	var rej *referral.RiskRejection
	switch {
	case errors.As(err, &rej):
		a.log.Info("risk_rejected", "request_id", web.RequestID(c), "tenant", auth.TenantOf(c),
			"user", auth.PrincipalOf(c).UserID, "reasons", strings.Join(rej.Reasons, ","))
		count(referral.RiskReject, rej.Reasons)
	case err != nil:
	case ref.Held():
		a.log.Info("risk_held", "request_id", web.RequestID(c), "tenant", auth.TenantOf(c),
			"referral_id", ref.ID, "reasons", strings.Join(ref.Review.Reasons, ","))
		count(referral.RiskHold, ref.Review.Reasons)
	default:
		count(referral.RiskAllow, nil)
	}
}

// captureSignals records the client address and the device id of every player request as risk
// signals (§12) before the handler runs, so an apply-code counts its own request. The device id
// is the token's device_id claim when present, else the X-Device-Id header; one that is not a
// valid device id is ignored. A failure to record is logged and the request goes on: signals
// inform risk decisions, they do not gate the API.
func (a *API) captureSignals(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p := auth.PrincipalOf(c)
		if p.Role != auth.RolePlayer {
			return next(c)
		}
		sig := referral.Signal{TenantID: auth.TenantOf(c), UserID: p.UserID, SeenAt: a.Now()}
		device := p.DeviceID
		if device == "" {
			device = c.Request().Header.Get(DeviceIDHeader)
		}
		if referral.ValidDeviceID(device) {
			sig.DeviceID = device
		}
		if addr, ok := referral.ParseAddress(c.RealIP()); ok {
			sig.AddressHash = referral.AddressHash(a.cfg.AddressHashKey, addr)
		}
		// The request's context: a signal is not worth outliving the request's deadline.
		if err := a.store.RecordSignals(c.Request().Context(), []referral.Signal{sig}); err != nil {
			a.log.Warn("record_signals", "request_id", web.RequestID(c), "err", err)
		}
		return next(c)
	}
}

// signalIn is the body of POST /v1/referral/signals.
type signalIn struct {
	UserID   *string        `json:"user_id"`
	Address  *string        `json:"address"`
	DeviceID *string        `json:"device_id"`
	SeenAt   *apishape.Time `json:"seen_at"`
}

// toSignal validates the body: user_id 1–128 characters, at least one of address (an IP
// address) and device_id (ValidDeviceID), seen_at (default now) at most
// referral.MaxEventFutureSkew ahead.
func (in signalIn) toSignal(tenant string, key []byte, now time.Time) (referral.Signal, error) {
	fe := referral.FieldErrors{}
	sig := referral.Signal{TenantID: tenant, SeenAt: now}
	switch {
	case in.UserID == nil:
		fe.Add("user_id", "is required")
	case !validText(*in.UserID, referral.MaxUserIDLength):
		fe.Add("user_id", "must be 1-128 characters, not blank, without NUL")
	default:
		sig.UserID = *in.UserID
	}
	if in.Address != nil {
		if addr, ok := referral.ParseAddress(*in.Address); ok {
			sig.AddressHash = referral.AddressHash(key, addr)
		} else {
			fe.Add("address", "must be an IPv4 or IPv6 address")
		}
	}
	if in.DeviceID != nil {
		if referral.ValidDeviceID(*in.DeviceID) {
			sig.DeviceID = *in.DeviceID
		} else {
			fe.Add("device_id", "must be 1-128 characters without control characters")
		}
	}
	if in.Address == nil && in.DeviceID == nil {
		fe.Add("address", "address or device_id is required")
	}
	if in.SeenAt != nil {
		sig.SeenAt = time.Time(*in.SeenAt)
		if sig.SeenAt.After(now.Add(referral.MaxEventFutureSkew)) {
			fe.Add("seen_at", "must not be more than 5 minutes in the future")
		}
		if sig.SeenAt.Year() < 1 {
			fe.Add("seen_at", "must not be before year 1")
		}
	}
	return sig, fe.Err()
}

func (a *API) postSignal(c echo.Context) error {
	var in signalIn
	if err := web.Bind(c, &in, web.RejectReadOnly); err != nil {
		return err
	}
	sig, err := in.toSignal(auth.TenantOf(c), a.cfg.AddressHashKey, a.Now().UTC())
	if err != nil {
		return err
	}
	if err := a.store.RecordSignals(c.Request().Context(), []referral.Signal{sig}); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apishape.NewSignal(sig))
}

// riskPolicyReadOnly are the risk policy fields a client may read but not write.
var riskPolicyReadOnly = []string{"tenant_id", "updated_at"}

// riskPolicyIn is the body of PUT /v1/referral/risk-policy; an omitted field takes its default
// (referral.DefaultRiskPolicy). velocity is decoded strictly by toPolicy.
type riskPolicyIn struct {
	Active             *bool           `json:"active"`
	SameDevice         *string         `json:"same_device"`
	SameAddress        *string         `json:"same_address"`
	AddressWindowHours *int            `json:"address_window_hours"`
	Velocity           json.RawMessage `json:"velocity"`
}

// velocityIn is the velocity object of a risk policy; every field is required.
type velocityIn struct {
	MaxReferrals *int    `json:"max_referrals"`
	PerHours     *int    `json:"per_hours"`
	Action       *string `json:"action"`
}

func (in riskPolicyIn) toPolicy(tenant string) (referral.RiskPolicy, error) {
	p := referral.DefaultRiskPolicy(tenant)
	if in.Active != nil {
		p.Active = *in.Active
	}
	if in.SameDevice != nil {
		p.SameDevice = *in.SameDevice
	}
	if in.SameAddress != nil {
		p.SameAddress = *in.SameAddress
	}
	if in.AddressWindowHours != nil {
		p.AddressWindowHours = *in.AddressWindowHours
	}
	fe := referral.FieldErrors{}
	if raw := bytes.TrimSpace(in.Velocity); len(raw) > 0 && string(raw) != "null" {
		var v velocityIn
		if err := web.Decode(raw, &v, web.RejectReadOnly); err != nil {
			prefixFields(fe, "velocity", err)
		} else {
			for field, val := range map[string]*int{"max_referrals": v.MaxReferrals, "per_hours": v.PerHours} {
				if val == nil {
					fe.Add("velocity."+field, "is required")
				}
			}
			if v.Action == nil {
				fe.Add("velocity.action", "is required")
			}
			if len(fe) == 0 {
				p.Velocity = &referral.Velocity{MaxReferrals: *v.MaxReferrals, PerHours: *v.PerHours, Action: *v.Action}
			}
		}
	}
	if err := fe.Err(); err != nil {
		return p, err
	}
	return p, p.Validate()
}

// prefixFields copies a nested object's validation failures into fe under prefix.
func prefixFields(fe referral.FieldErrors, prefix string, err error) {
	var de *referral.Error
	if errors.As(err, &de) && len(de.Fields) > 0 {
		for k, v := range de.Fields {
			if k == "body" {
				fe.Add(prefix, v)
			} else {
				fe.Add(prefix+"."+k, v)
			}
		}
		return
	}
	fe.Add(prefix, "must be an object")
}

func (a *API) getRiskPolicy(c echo.Context) error {
	p, err := a.store.GetRiskPolicy(c.Request().Context(), auth.TenantOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apishape.NewRiskPolicy(p))
}

func (a *API) putRiskPolicy(c echo.Context) error {
	var in riskPolicyIn
	if err := web.Bind(c, &in, web.IgnoreReadOnly, riskPolicyReadOnly...); err != nil {
		return err
	}
	p, err := in.toPolicy(auth.TenantOf(c))
	if err != nil {
		return err
	}
	out, err := a.store.PutRiskPolicy(c.Request().Context(), p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apishape.NewRiskPolicy(out))
}

// reviewIn is the body of PUT /v1/referral/referrals/{id}/review.
type reviewIn struct {
	Decision *string `json:"decision"`
	Note     *string `json:"note"`
}

func (a *API) reviewReferral(c echo.Context) error {
	id, err := web.PathUUID(c, "referral_id", "referral")
	if err != nil {
		return err
	}
	var in reviewIn
	if err := web.Bind(c, &in, web.RejectReadOnly); err != nil {
		return err
	}
	fe := referral.FieldErrors{}
	if in.Decision == nil || (*in.Decision != referral.DecisionApprove && *in.Decision != referral.DecisionReject) {
		fe.Add("decision", "must be approve or reject")
	}
	if err := referral.JoinValidation(fe.Err(), referral.CheckNote("note", in.Note, referral.MaxReviewNoteLength)); err != nil {
		return err
	}
	out, err := a.store.ReviewReferral(c.Request().Context(), auth.TenantOf(c), id, *in.Decision, in.Note)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apishape.NewAdminReferral(out))
}
