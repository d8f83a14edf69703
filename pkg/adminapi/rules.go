package adminapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/referral"
	"github.com/phoenix-referral/phoenix/pkg/web"
)

// ruleReadOnly are the commission rule fields a client may read but not write.
var ruleReadOnly = []string{"id", "tenant_id", "created_at", "updated_at"}

// Limits of a commission rule's strings.
const (
	maxRuleNameLength  = 200
	maxFieldPathLength = 200
	maxCurrencyLength  = 64
)

// defaultCommissionField is the payload field commissions are computed on when a rule names none.
const defaultCommissionField = "amount"

// ruleIn is the body of POST and PUT /v1/affiliate/commission-rules.
type ruleIn struct {
	Name            *string                `json:"name"`
	EventType       *string                `json:"event_type"`
	EventFilter     json.RawMessage        `json:"event_filter"`
	CommissionField *string                `json:"commission_field"`
	UseTierRate     *bool                  `json:"use_tier_rate"`
	CustomRate      web.Opt[apishape.Rate] `json:"custom_rate"`
	CurrencyID      *string                `json:"currency_id"`
	Active          *bool                  `json:"active"`
}

// toRule validates the body (SPEC §4.7) and fills defaults: no filter, commission_field
// "amount", use_tier_rate true, active true. custom_rate is required when use_tier_rate is
// false and must be null (or absent) otherwise.
func (in ruleIn) toRule(tenant string) (referral.CommissionRule, error) {
	fe := referral.FieldErrors{}
	r := referral.CommissionRule{TenantID: tenant, CommissionField: defaultCommissionField, UseTierRate: true, Active: true}
	switch {
	case in.Name == nil:
		fe.Add("name", "is required")
	case !validText(*in.Name, maxRuleNameLength):
		fe.Add("name", fmt.Sprintf("must be 1-%d characters, not blank, without NUL", maxRuleNameLength))
	default:
		r.Name = *in.Name
	}
	switch {
	case in.EventType == nil:
		fe.Add("event_type", "is required")
	case !referral.ValidEventType(*in.EventType):
		fe.Add("event_type", "must be 1-100 characters of a-z, 0-9, '.', '_' and '-'")
	default:
		r.EventType = *in.EventType
	}
	filter, err := referral.ParseFilter("event_filter", in.EventFilter)
	switch {
	case err != nil:
		fe.Add("event_filter", fieldReason(err, "event_filter"))
	case jsonHasNUL(in.EventFilter):
		fe.Add("event_filter", "must not contain NUL characters")
	}
	r.EventFilter = filter
	if in.CommissionField != nil {
		if reason := checkFieldPath(*in.CommissionField); reason != "" {
			fe.Add("commission_field", reason)
		}
		r.CommissionField = *in.CommissionField
	}
	if in.UseTierRate != nil {
		r.UseTierRate = *in.UseTierRate
	}
	switch {
	case r.UseTierRate && in.CustomRate.Ptr() != nil:
		fe.Add("custom_rate", "must be null when use_tier_rate is true")
	case !r.UseTierRate && in.CustomRate.Ptr() == nil:
		fe.Add("custom_rate", "is required when use_tier_rate is false")
	case !r.UseTierRate:
		rate := referral.Rate(in.CustomRate.Value)
		r.CustomRate = &rate
	}
	switch {
	case in.CurrencyID == nil:
		fe.Add("currency_id", "is required")
	case !validText(*in.CurrencyID, maxCurrencyLength):
		fe.Add("currency_id", fmt.Sprintf("must be 1-%d characters, not blank, without NUL", maxCurrencyLength))
	default:
		r.CurrencyID = *in.CurrencyID
	}
	if in.Active != nil {
		r.Active = *in.Active
	}
	return r, fe.Err()
}

// checkFieldPath returns why a dotted payload path is invalid, or "".
func checkFieldPath(p string) string {
	if p == "" || utf8.RuneCountInString(p) > maxFieldPathLength || strings.ContainsRune(p, 0) {
		return fmt.Sprintf("must be a dotted path of 1-%d characters without NUL", maxFieldPathLength)
	}
	segs := strings.Split(p, ".")
	if len(segs) > referral.MaxPathSegments {
		return fmt.Sprintf("must have at most %d segments", referral.MaxPathSegments)
	}
	for _, s := range segs {
		if s == "" {
			return "must not have an empty segment"
		}
	}
	return ""
}

// jsonHasNUL reports whether a JSON document has a NUL character in a string or key, which
// PostgreSQL's jsonb refuses.
func jsonHasNUL(raw json.RawMessage) bool {
	var v any
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil {
		return false
	}
	var walk func(v any) bool
	walk = func(v any) bool {
		switch x := v.(type) {
		case string:
			return strings.ContainsRune(x, 0)
		case []any:
			for _, e := range x {
				if walk(e) {
					return true
				}
			}
		case map[string]any:
			for k, e := range x {
				if strings.ContainsRune(k, 0) || walk(e) {
					return true
				}
			}
		}
		return false
	}
	return walk(v)
}

// fieldReason returns the reason a VALIDATION_FAILED error gives for field (else its text).
func fieldReason(err error, field string) string {
	var de *referral.Error
	if errors.As(err, &de) {
		if r, ok := de.Fields[field]; ok {
			return r
		}
		return de.Message
	}
	return err.Error()
}

func (a *API) createRule(c echo.Context) error {
	var in ruleIn
	if err := web.Bind(c, &in, web.RejectReadOnly, ruleReadOnly...); err != nil {
		return err
	}
	r, err := in.toRule(auth.TenantOf(c))
	if err != nil {
		return err
	}
	out, err := a.store.CreateCommissionRule(c.Request().Context(), r)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apishape.NewCommissionRule(out))
}

func (a *API) listRules(c echo.Context) error {
	q := web.NewQuery(c)
	f := referral.CommissionRuleFilter{Active: q.Bool("active"), EventType: q.String("event_type")}
	if f.EventType != nil && !referral.ValidEventType(*f.EventType) {
		q.Errors.Add("event_type", "must be 1-100 characters of a-z, 0-9, '.', '_' and '-'")
	}
	page, err := web.PageOf(c)
	if err := referral.JoinValidation(q.Err(), err); err != nil {
		return err
	}
	f.Limit, f.Offset = page.Limit, page.Offset
	items, total, err := a.store.ListCommissionRules(c.Request().Context(), auth.TenantOf(c), f)
	if err != nil {
		return err
	}
	return listPage(c, items, total, page, apishape.NewCommissionRule)
}

func (a *API) getRule(c echo.Context) error {
	return getByID(c, "rule_id", "commission rule", a.store.GetCommissionRule, apishape.NewCommissionRule)
}

func (a *API) replaceRule(c echo.Context) error {
	build := func(in *ruleIn, tenant string, id uuid.UUID) (referral.CommissionRule, error) {
		v, err := in.toRule(tenant)
		v.ID = id
		return v, err
	}
	return replaceByID(c, "rule_id", "commission rule", ruleReadOnly, build, a.store.ReplaceCommissionRule, apishape.NewCommissionRule)
}

func (a *API) deleteRule(c echo.Context) error {
	return deleteByID(c, "rule_id", "commission rule", a.store.DeleteCommissionRule)
}
