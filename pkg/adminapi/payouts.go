package adminapi

import (
	"bytes"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/referral"
	"github.com/phoenix-referral/phoenix/pkg/web"
)

// reversal reads the event's reversal fields (§10.1) into ev, adding what is wrong to fe:
// reverses is a string, reverse_amount a JSON integer (a positive one is CheckEvent's rule).
func (in eventIn) reversal(ev *referral.Event, fe referral.FieldErrors) {
	if in.Reverses != nil {
		if *in.Reverses == "" {
			fe.Add("reverses", "must be an event_id: 1 to 128 characters without NUL")
		}
		ev.Reverses = *in.Reverses
	}
	raw := bytes.TrimSpace(in.ReverseAmount)
	if len(raw) == 0 || string(raw) == "null" {
		return
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		fe.Add("reverse_amount", "must be a positive integer")
		return
	}
	ev.ReverseAmount = &n
}

// oneOfOrNil reads an optional query parameter that must be one of allowed.
func oneOfOrNil(q *web.Query, name string, allowed []string) *string {
	s := q.String(name)
	if s != nil && !slices.Contains(allowed, *s) {
		q.Errors.Add(name, "must be one of "+joinComma(allowed))
		return nil
	}
	return s
}

func joinComma(ss []string) string {
	var b bytes.Buffer
	for i, s := range ss {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(s)
	}
	return b.String()
}

// reverseIn is the body of POST /v1/affiliate/commissions/{commission_id}/reverse.
type reverseIn struct {
	Reason *string `json:"reason"`
}

// reverseCommission is POST /v1/affiliate/commissions/{commission_id}/reverse: one row
// reversed in full by an admin.
func (a *API) reverseCommission(c echo.Context) error {
	id, err := web.PathUUID(c, "commission_id", "commission")
	if err != nil {
		return err
	}
	var in reverseIn
	if err := web.Bind(c, &in, web.RejectReadOnly); err != nil {
		return err
	}
	if err := referral.CheckRowReversalReason(in.Reason); err != nil {
		return err
	}
	out, err := a.store.ReverseCommission(c.Request().Context(), auth.TenantOf(c), id, in.Reason)
	if err != nil {
		return err
	}
	a.metrics.reversed(out.Amount, "commission")
	return c.JSON(http.StatusOK, apishape.NewCommission(out))
}

// payoutPolicyIn is the body of PUT /v1/affiliate/payout-policy; omitted fields take their
// defaults (§3: PUT replaces).
type payoutPolicyIn struct {
	HoldDays      *int             `json:"hold_days"`
	MinimumPayout *[]walletAmounts `json:"minimum_payout"`
}

// walletAmounts is one minimum of a payout policy.
type walletAmounts struct {
	CurrencyID *string `json:"currency_id"`
	Amount     *int64  `json:"amount"`
}

// payoutPolicyReadOnly are the policy's fields a PUT ignores.
var payoutPolicyReadOnly = []string{"updated_at"}

func (a *API) getPayoutPolicy(c echo.Context) error {
	p, err := a.store.GetPayoutPolicy(c.Request().Context(), auth.TenantOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apishape.NewPayoutPolicy(p))
}

func (a *API) putPayoutPolicy(c echo.Context) error {
	var in payoutPolicyIn
	if err := web.Bind(c, &in, web.IgnoreReadOnly, payoutPolicyReadOnly...); err != nil {
		return err
	}
	p := referral.DefaultPayoutPolicy(auth.TenantOf(c))
	if in.HoldDays != nil {
		p.HoldDays = *in.HoldDays
	}
	fe := referral.FieldErrors{}
	if in.MinimumPayout != nil {
		for _, w := range *in.MinimumPayout {
			if w.CurrencyID == nil || w.Amount == nil {
				fe.Add("minimum_payout", "each entry needs currency_id and amount")
				continue
			}
			p.MinimumPayout = append(p.MinimumPayout, referral.Wallet{CurrencyID: *w.CurrencyID, Amount: *w.Amount})
		}
	}
	if err := referral.JoinValidation(fe.Err(), p.Validate()); err != nil {
		return err
	}
	out, err := a.store.PutPayoutPolicy(c.Request().Context(), p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apishape.NewPayoutPolicy(out))
}

// payoutRunIn is the body of POST /v1/affiliate/payouts.
type payoutRunIn struct {
	CurrencyID   *string      `json:"currency_id"`
	AffiliateIDs *[]uuid.UUID `json:"affiliate_ids"`
}

// maxPayoutAffiliates bounds the affiliates one run may list.
const maxPayoutAffiliates = 10_000

// payoutReadOnly are the payout fields a client may read but not write.
var payoutReadOnly = []string{"id", "tenant_id", "created_at", "updated_at", "amount", "rows", "status", "paid_at"}

// createPayouts is POST /v1/affiliate/payouts: a payout run in one currency.
func (a *API) createPayouts(c echo.Context) error {
	var in payoutRunIn
	if err := web.Bind(c, &in, web.RejectReadOnly, payoutReadOnly...); err != nil {
		return err
	}
	fe := referral.FieldErrors{}
	if in.CurrencyID == nil {
		fe.Add("currency_id", "is required")
	} else if n := utf8.RuneCountInString(*in.CurrencyID); n < 1 || n > 64 {
		fe.Add("currency_id", "must be 1 to 64 characters")
	}
	var ids []uuid.UUID
	if in.AffiliateIDs != nil {
		ids = *in.AffiliateIDs
		switch {
		case len(ids) == 0:
			fe.Add("affiliate_ids", "must list at least one affiliate when given")
		case len(ids) > maxPayoutAffiliates:
			fe.Add("affiliate_ids", "must list at most 10000 affiliates")
		}
		ids = slices.Compact(slices.SortedFunc(slices.Values(ids), func(x, y uuid.UUID) int { return bytes.Compare(x[:], y[:]) }))
	}
	if err := fe.Err(); err != nil {
		return err
	}
	start := time.Now()
	run, err := a.store.CreatePayouts(c.Request().Context(), auth.TenantOf(c), *in.CurrencyID, ids)
	if err != nil {
		return err
	}
	a.metrics.payoutRun(run, time.Since(start))
	return c.JSON(http.StatusOK, apishape.NewPayoutRun(run))
}

// listPayouts is GET /v1/affiliate/payouts.
func (a *API) listPayouts(c echo.Context) error {
	q := web.NewQuery(c)
	f := referral.PayoutFilter{
		AffiliateID: q.UUID("affiliate_id"),
		Status:      oneOfOrNil(q, "status", referral.PayoutStatuses),
		CurrencyID:  q.String("currency_id"),
	}
	page, perr := web.PageOf(c)
	if err := errors.Join(q.Err(), perr); err != nil {
		return mergeValidation(err)
	}
	f.Limit, f.Offset = page.Limit, page.Offset
	items, total, err := a.store.ListPayouts(c.Request().Context(), auth.TenantOf(c), f)
	if err != nil {
		return err
	}
	return listPage(c, items, total, page, apishape.NewPayout)
}

func (a *API) getPayout(c echo.Context) error {
	return getByID(c, "payout_id", "payout", a.store.GetPayout, apishape.NewPayout)
}

// payoutStatusIn is the body of PUT /v1/affiliate/payouts/{payout_id}/status.
type payoutStatusIn struct {
	Status    *string `json:"status"`
	Reference *string `json:"reference"`
}

// setPayoutStatus is PUT /v1/affiliate/payouts/{payout_id}/status: paid or failed.
func (a *API) setPayoutStatus(c echo.Context) error {
	id, err := web.PathUUID(c, "payout_id", "payout")
	if err != nil {
		return err
	}
	var in payoutStatusIn
	if err := web.Bind(c, &in, web.IgnoreReadOnly); err != nil {
		return err
	}
	fe := referral.FieldErrors{}
	if in.Status == nil || (*in.Status != referral.PayoutPaid && *in.Status != referral.PayoutFailed) {
		fe.Add("status", "must be paid or failed")
	}
	if err := referral.JoinValidation(fe.Err(), referral.CheckPayoutReference(in.Reference)); err != nil {
		return err
	}
	out, err := a.store.SetPayoutStatus(c.Request().Context(), auth.TenantOf(c), id, *in.Status, in.Reference)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apishape.NewPayout(out))
}

// affiliateBalance is GET /v1/affiliates/{affiliate_id}/balance.
func (a *API) affiliateBalance(c echo.Context) error {
	return getByID(c, "affiliate_id", "affiliate", a.store.AffiliateBalance, apishape.NewBalances)
}

// moneyMetrics counts reversals and payout runs (§10).
type moneyMetrics struct {
	reversedAmount *prometheus.CounterVec
	reversals      *prometheus.CounterVec
	runs           prometheus.Counter
	payouts        prometheus.Counter
	runSeconds     prometheus.Histogram
}

// newMoneyMetrics returns the metrics, not registered yet (API.Collectors lists them).
func newMoneyMetrics() *moneyMetrics {
	m := &moneyMetrics{
		reversedAmount: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "phoenix_commission_reversed_amount_total",
			Help: "Commission amounts reversed (minor units, every currency), by how: event or commission (an admin's per-row reversal)."}, []string{"by"}),
		reversals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "phoenix_commission_reversal_rows_total",
			Help: "Negative commission rows written, by how: event or commission."}, []string{"by"}),
		runs: prometheus.NewCounter(prometheus.CounterOpts{Name: "phoenix_payout_runs_total",
			Help: "Payout runs completed."}),
		payouts: prometheus.NewCounter(prometheus.CounterOpts{Name: "phoenix_payouts_created_total",
			Help: "Payouts created by payout runs."}),
		runSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "phoenix_payout_run_duration_seconds",
			Help: "How long payout runs take.", Buckets: prometheus.ExponentialBuckets(0.01, 4, 8)}),
	}
	return m
}

// collectors are the money metrics (reversed amounts, payout runs), for API.Collectors.
func (m *moneyMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.reversedAmount, m.reversals, m.runs, m.payouts, m.runSeconds}
}

// countReversals counts the negative commission rows of a processed event's outcome.
func (m *moneyMetrics) countReversals(o referral.EventOutcome) {
	if o.Status != referral.EventProcessed {
		return
	}
	for _, c := range o.Commissions {
		if c.ReversesID != nil {
			m.reversed(c.Amount, "event")
		}
	}
}

func (m *moneyMetrics) reversed(amount int64, by string) {
	m.reversedAmount.WithLabelValues(by).Add(float64(-amount))
	m.reversals.WithLabelValues(by).Inc()
}

func (m *moneyMetrics) payoutRun(r referral.PayoutRun, took time.Duration) {
	m.runs.Inc()
	m.payouts.Add(float64(len(r.Payouts)))
	m.runSeconds.Observe(took.Seconds())
}
