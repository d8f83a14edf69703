package adminapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/referral"
	"github.com/phoenix-referral/phoenix/pkg/web"
)

// impressionIn is the POST /v1/referral/impressions body.
type impressionIn struct {
	Code     *string         `json:"code"`
	Source   *string         `json:"source"`
	Metadata json.RawMessage `json:"metadata"`
}

// recordImpression: POST /v1/referral/impressions (SPEC §15), for a visitor (?tenant_id=, no
// token) or the platform's service token. An unknown, inactive, expired or exhausted code
// records nothing and answers valid: false (no 404: the landing page still renders). A
// visitor's request first passes the in-memory limit per client address shared with anonymous
// validation, before any database work; only its valid: false answers count against it. A
// visitor's address is stored only as referral.AddressHash; the service's peer is the platform,
// so its impressions carry no address.
func (a *API) recordImpression(c echo.Context) (err error) {
	visitor := auth.PrincipalOf(c).Role == ""
	valid := false
	if visitor {
		done, rerr := a.visitors.Reserve(c.RealIP())
		if rerr != nil {
			return rerr
		}
		defer func() { done(err == nil && !valid) }()
	}
	var in impressionIn
	if err := web.Bind(c, &in, web.RejectReadOnly); err != nil {
		return err
	}
	fe := referral.FieldErrors{}
	if in.Code == nil || strings.TrimSpace(*in.Code) == "" {
		fe.Add("code", "is required")
	}
	if in.Source != nil && !referral.ValidSource(*in.Source) {
		fe.Add("source", "must be 1 to 64 characters of a-z, 0-9, '_', '.' and '-'")
	}
	meta := jsonObject(fe, "metadata", in.Metadata, referral.MaxImpressionMetadataBytes)
	if err := fe.Err(); err != nil {
		return err
	}
	out := referral.RecordedImpression{}
	code, nerr := referral.NormalizeCode("code", *in.Code)
	if nerr != nil {
		// A string that cannot be a code is an unknown code, answered without a lookup.
		code = *in.Code
	} else {
		imp := referral.NewImpression{TenantID: auth.TenantOf(c), Code: code, Source: in.Source, Metadata: meta}
		if addr, perr := netip.ParseAddr(c.RealIP()); visitor && perr == nil {
			imp.AddressHash = referral.AddressHash(a.cfg.AddressHashKey, addr)
		}
		if out, err = a.store.RecordImpression(c.Request().Context(), imp); err != nil {
			return err
		}
	}
	valid = out.Valid
	a.impressions.WithLabelValues(strconv.FormatBool(valid)).Inc()
	return c.JSON(http.StatusOK, apishape.NewImpression(code, out))
}

// funnel: GET /v1/referral/funnel?period=&campaign_id=&code= (SPEC §15).
func (a *API) funnel(c echo.Context) error {
	q := web.NewQuery(c)
	f := referral.FunnelFilter{Period: periodOf(q), CampaignID: q.UUID("campaign_id")}
	if s := q.String("code"); s != nil {
		code, err := referral.NormalizeCode("code", *s)
		if err != nil {
			addFieldErrors(q.Errors, err)
		}
		f.Code = &code
	}
	if err := q.Err(); err != nil {
		return err
	}
	out, err := a.store.Funnel(c.Request().Context(), auth.TenantOf(c), f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apishape.NewFunnel(f.Period, out))
}

// jsonObject checks the optional JSON object field of a body and returns it compacted ({} when
// absent or null), adding to fe when it is not an object or is longer than max bytes compacted.
func jsonObject(fe referral.FieldErrors, field string, raw json.RawMessage, max int) []byte {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return []byte(`{}`)
	}
	var compact bytes.Buffer
	if raw[0] != '{' || json.Compact(&compact, raw) != nil {
		fe.Add(field, "must be a JSON object")
		return nil
	}
	if compact.Len() > max {
		fe.Add(field, fmt.Sprintf("must be at most %d KiB", max>>10))
	}
	return compact.Bytes()
}
