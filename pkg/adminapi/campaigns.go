package adminapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/referral"
	"github.com/phoenix-referral/phoenix/pkg/web"
)

// campaignReadOnly are the campaign fields a client may read but not write.
var campaignReadOnly = []string{"id", "tenant_id", "created_at", "updated_at"}

// maxWalletEntries bounds a rewards object's wallet list.
const maxWalletEntries = 50

// campaignIn is the body of POST and PUT /v1/referral/campaigns. The JSON-valued fields are
// kept raw and validated by toCampaign, so their errors name the nested field.
type campaignIn struct {
	Name             *string         `json:"name"`
	QualifyingEvent  *string         `json:"qualifying_event"`
	QualifyingFilter json.RawMessage `json:"qualifying_filter"`
	ReferrerRewards  json.RawMessage `json:"referrer_rewards"`
	RefereeRewards   json.RawMessage `json:"referee_rewards"`
	Active           *bool           `json:"active"`
	StartsAt         *apishape.Time  `json:"starts_at"`
	EndsAt           *apishape.Time  `json:"ends_at"`
	Clawback         *bool           `json:"clawback"`
	Milestones       json.RawMessage `json:"milestones"`
}

// toCampaign validates the body (SPEC §4.1) and fills the defaults of omitted fields:
// no filter, empty rewards, active, no time bounds.
func (in campaignIn) toCampaign(tenant string) (referral.Campaign, error) {
	fe := referral.FieldErrors{}
	c := referral.Campaign{TenantID: tenant, Active: true}
	switch {
	case in.Name == nil:
		fe.Add("name", "is required")
	case strings.TrimSpace(*in.Name) == "" || utf8.RuneCountInString(*in.Name) > 200:
		fe.Add("name", "must be 1-200 characters")
	default:
		c.Name = *in.Name
	}
	switch {
	case in.QualifyingEvent == nil:
		fe.Add("qualifying_event", "is required")
	case !referral.ValidEventType(*in.QualifyingEvent):
		fe.Add("qualifying_event", "must be 1-100 characters of a-z, 0-9, '.', '_' and '-'")
	default:
		c.QualifyingEvent = *in.QualifyingEvent
	}
	filter, err := referral.ParseFilter("qualifying_filter", in.QualifyingFilter)
	if err != nil {
		addFieldErrors(fe, err)
	}
	c.QualifyingFilter = filter
	c.ReferrerRewards = parseRewards("referrer_rewards", in.ReferrerRewards, fe)
	c.RefereeRewards = parseRewards("referee_rewards", in.RefereeRewards, fe)
	c.Milestones = parseMilestones(in.Milestones, fe)
	if in.Active != nil {
		c.Active = *in.Active
	}
	if in.Clawback != nil {
		c.Clawback = *in.Clawback
	}
	if in.StartsAt != nil {
		t := time.Time(*in.StartsAt)
		c.StartsAt = &t
	}
	if in.EndsAt != nil {
		t := time.Time(*in.EndsAt)
		c.EndsAt = &t
	}
	if c.StartsAt != nil && c.EndsAt != nil && !c.StartsAt.Before(*c.EndsAt) {
		fe.Add("ends_at", "must be after starts_at")
	}
	return c, fe.Err()
}

// addFieldErrors copies a VALIDATION_FAILED error's fields into fe.
func addFieldErrors(fe referral.FieldErrors, err error) {
	var de *referral.Error
	if errors.As(err, &de) {
		for k, v := range de.Fields {
			fe.Add(k, v)
		}
		return
	}
	fe.Add("body", "has an invalid value")
}

// parseRewards reads a rewards object: only "wallet", an array of {currency_id 1–64, amount
// integer > 0}, each currency at most once. Absent or null means no rewards.
func parseRewards(field string, raw json.RawMessage, fe referral.FieldErrors) []referral.Wallet {
	out := []referral.Wallet{}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return out
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		fe.Add(field, "must be an object with a wallet array")
		return out
	}
	for k := range obj {
		if k != "wallet" {
			fe.Add(field+"."+k, "is not a known field")
			return out
		}
	}
	var items []json.RawMessage
	if w, ok := obj["wallet"]; ok {
		if err := json.Unmarshal(w, &items); err != nil || items == nil {
			fe.Add(field+".wallet", "must be an array")
			return out
		}
	}
	if len(items) > maxWalletEntries {
		fe.Add(field+".wallet", fmt.Sprintf("must hold at most %d entries", maxWalletEntries))
		return out
	}
	seen := map[string]bool{}
	for i, item := range items {
		at := fmt.Sprintf("%s.wallet[%d]", field, i)
		var e map[string]json.RawMessage
		if err := json.Unmarshal(item, &e); err != nil || e == nil {
			fe.Add(at, "must be an object with currency_id and amount")
			continue
		}
		for k := range e {
			if k != "currency_id" && k != "amount" {
				fe.Add(at+"."+k, "is not a known field")
			}
		}
		var cur string
		if err := json.Unmarshal(e["currency_id"], &cur); err != nil || cur == "" || utf8.RuneCountInString(cur) > 64 {
			fe.Add(at+".currency_id", "must be a string of 1-64 characters")
		} else if seen[cur] {
			fe.Add(at+".currency_id", "appears more than once")
		}
		seen[cur] = true
		amount, err := strconv.ParseInt(string(bytes.TrimSpace(e["amount"])), 10, 64)
		if err != nil || amount <= 0 {
			fe.Add(at+".amount", "must be an integer greater than 0")
		}
		out = append(out, referral.Wallet{CurrencyID: cur, Amount: amount})
	}
	return out
}

func (a *API) createCampaign(c echo.Context) error {
	var in campaignIn
	if err := web.Bind(c, &in, web.RejectReadOnly, campaignReadOnly...); err != nil {
		return err
	}
	camp, err := in.toCampaign(auth.TenantOf(c))
	if err != nil {
		return err
	}
	out, err := a.store.CreateCampaign(c.Request().Context(), camp)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apishape.NewCampaign(out))
}

func (a *API) listCampaigns(c echo.Context) error {
	q := web.NewQuery(c)
	active := q.Bool("active")
	page, err := web.PageOf(c)
	if err := referral.JoinValidation(q.Err(), err); err != nil {
		return err
	}
	items, total, err := a.store.ListCampaigns(c.Request().Context(), auth.TenantOf(c),
		referral.CampaignFilter{Active: active, Limit: page.Limit, Offset: page.Offset})
	if err != nil {
		return err
	}
	return listPage(c, items, total, page, apishape.NewCampaign)
}

func (a *API) getCampaign(c echo.Context) error {
	return getByID(c, "campaign_id", "campaign", a.store.GetCampaign, apishape.NewCampaign)
}

func (a *API) replaceCampaign(c echo.Context) error {
	build := func(in *campaignIn, tenant string, id uuid.UUID) (referral.Campaign, error) {
		v, err := in.toCampaign(tenant)
		v.ID = id
		return v, err
	}
	return replaceByID(c, "campaign_id", "campaign", campaignReadOnly, build, a.store.ReplaceCampaign, apishape.NewCampaign)
}

func (a *API) deleteCampaign(c echo.Context) error {
	return deleteByID(c, "campaign_id", "campaign", a.store.DeleteCampaign)
}

// milestoneIn is one element of a campaign's milestones.
type milestoneIn struct {
	SuccessfulReferrals *int            `json:"successful_referrals"`
	Rewards             json.RawMessage `json:"rewards"`
}

// parseMilestones reads a campaign's milestones (§13): an array (absent or null: none) of
// {successful_referrals, rewards}, validated by referral.ValidateMilestones.
func parseMilestones(raw json.RawMessage, fe referral.FieldErrors) []referral.Milestone {
	out := []referral.Milestone{}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return out
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil || items == nil {
		fe.Add("milestones", "must be an array")
		return out
	}
	if len(items) > referral.MaxMilestones {
		fe.Add("milestones", fmt.Sprintf("must hold at most %d milestones", referral.MaxMilestones))
		return out
	}
	valid := true
	for i, item := range items {
		at := fmt.Sprintf("milestones[%d]", i)
		var m milestoneIn
		if err := web.Decode(item, &m, web.RejectReadOnly); err != nil {
			prefixFields(fe, at, err)
			valid = false
			continue
		}
		if m.SuccessfulReferrals == nil {
			fe.Add(at+".successful_referrals", "is required")
			valid = false
			continue
		}
		out = append(out, referral.Milestone{SuccessfulReferrals: *m.SuccessfulReferrals,
			Rewards: parseRewards(at+".rewards", m.Rewards, fe)})
	}
	if valid {
		referral.ValidateMilestones(fe, "milestones", out)
	}
	return out
}
