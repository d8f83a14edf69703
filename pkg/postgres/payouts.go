package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/outbox"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

var _ referral.PayoutService = (*Store)(nil)

// commissionStates is the commissions table with the status of the live payout holding each
// row (NULL for none), what referral.CommissionState needs besides available_at. Conditions on
// the commission columns are pushed below the joins by the planner.
const commissionStates = `(SELECT c.*, p.status AS payout_status FROM commissions c
	LEFT JOIN payout_rows pr ON pr.commission_id = c.id AND pr.live
	LEFT JOIN payouts p ON p.id = pr.payout_id) AS commissions`

// stateCommissionRow is a commissions row read through commissionStates.
type stateCommissionRow struct {
	ledgerCommissionRow
	PayoutStatus *string `db:"payout_status"`
}

// at converts the row with its state at now.
func (r stateCommissionRow) at(now time.Time) (referral.Commission, error) {
	c, err := r.domain()
	if err != nil {
		return c, err
	}
	status := ""
	if r.PayoutStatus != nil {
		status = *r.PayoutStatus
	}
	c.State = referral.CommissionState(c.AvailableAt, status, now)
	return c, nil
}

// holdStamp stamps new commission rows with the hold of their tenant's payout policy, read once
// per transaction and only when a row is written.
type holdStamp struct {
	tenant string
	days   *int
}

func newHold(tenant string) *holdStamp { return &holdStamp{tenant: tenant} }

// stamp sets c.AvailableAt (referral.AvailableAt, from c.CreatedAt) and the state c has then.
func (h *holdStamp) stamp(ctx context.Context, tx *sqlx.Tx, c *referral.Commission) error {
	if h.days == nil {
		p, err := loadPayoutPolicy(ctx, tx, h.tenant, false)
		if err != nil {
			return err
		}
		h.days = &p.HoldDays
	}
	c.AvailableAt = referral.AvailableAt(c.CreatedAt, *h.days, c.Amount)
	c.State = referral.CommissionState(c.AvailableAt, "", c.CreatedAt)
	return nil
}

// storedPayoutPolicy is a payout_policies row.
type storedPayoutPolicy struct {
	TenantID      string    `db:"tenant_id"`
	HoldDays      int       `db:"hold_days"`
	MinimumPayout []byte    `db:"minimum_payout"`
	UpdatedAt     time.Time `db:"updated_at"`
}

const payoutPolicyCols = `tenant_id, hold_days, minimum_payout, updated_at`

func (r storedPayoutPolicy) domain() (referral.PayoutPolicy, error) {
	var ws []storedWallet
	if err := json.Unmarshal(r.MinimumPayout, &ws); err != nil {
		return referral.PayoutPolicy{}, fmt.Errorf("decode stored minimum payout: %w", err)
	}
	p := referral.PayoutPolicy{TenantID: r.TenantID, HoldDays: r.HoldDays, MinimumPayout: make([]referral.Wallet, 0, len(ws))}
	for _, w := range ws {
		p.MinimumPayout = append(p.MinimumPayout, referral.Wallet{CurrencyID: w.CurrencyID, Amount: w.Amount})
	}
	at := r.UpdatedAt.UTC()
	p.UpdatedAt = &at
	return p, nil
}

// loadPayoutPolicy returns the tenant's payout policy, the defaults when none was put; share
// locks the row so the policy cannot change before the transaction ends.
func loadPayoutPolicy(ctx context.Context, tx *sqlx.Tx, tenant string, share bool) (referral.PayoutPolicy, error) {
	q := `SELECT ` + payoutPolicyCols + ` FROM payout_policies WHERE tenant_id = $1`
	if share {
		q += ` FOR SHARE`
	}
	var row storedPayoutPolicy
	if err := sqlx.GetContext(ctx, tx, &row, q, tenant); err != nil {
		if isNoRows(err) {
			return referral.DefaultPayoutPolicy(tenant), nil
		}
		return referral.PayoutPolicy{}, fmt.Errorf("load payout policy: %w", err)
	}
	return row.domain()
}

// GetPayoutPolicy returns the tenant's payout policy, the defaults until one is put.
func (s *Store) GetPayoutPolicy(ctx context.Context, tenant string) (referral.PayoutPolicy, error) {
	var out referral.PayoutPolicy
	err := s.readTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		out, err = loadPayoutPolicy(ctx, tx, tenant, false)
		return err
	})
	return out, err
}

// PutPayoutPolicy creates or replaces the tenant's payout policy. Errors: VALIDATION_FAILED.
func (s *Store) PutPayoutPolicy(ctx context.Context, p referral.PayoutPolicy) (referral.PayoutPolicy, error) {
	if err := p.Validate(); err != nil {
		return referral.PayoutPolicy{}, err
	}
	ws := make([]storedWallet, 0, len(p.MinimumPayout))
	for _, w := range p.MinimumPayout {
		ws = append(ws, storedWallet{CurrencyID: w.CurrencyID, Amount: w.Amount})
	}
	minimum, err := json.Marshal(ws)
	if err != nil {
		return referral.PayoutPolicy{}, fmt.Errorf("encode minimum payout: %w", err)
	}
	const q = `
		INSERT INTO payout_policies (tenant_id, hold_days, minimum_payout, updated_at)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (tenant_id) DO UPDATE
		SET hold_days = EXCLUDED.hold_days, minimum_payout = EXCLUDED.minimum_payout, updated_at = EXCLUDED.updated_at
		RETURNING ` + payoutPolicyCols
	var out referral.PayoutPolicy
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		var row storedPayoutPolicy
		if err := tx.GetContext(ctx, &row, q, p.TenantID, p.HoldDays, string(minimum), s.now()); err != nil {
			return fmt.Errorf("put payout policy: %w", err)
		}
		out, err = row.domain()
		return err
	})
	return out, err
}

// storedPayout is a payouts row.
type storedPayout struct {
	ID          uuid.UUID  `db:"id"`
	TenantID    string     `db:"tenant_id"`
	AffiliateID uuid.UUID  `db:"affiliate_id"`
	UserID      string     `db:"user_id"`
	CurrencyID  string     `db:"currency_id"`
	Amount      int64      `db:"amount"`
	Rows        int        `db:"rows"`
	Status      string     `db:"status"`
	Reference   *string    `db:"reference"`
	CreatedAt   time.Time  `db:"created_at"`
	UpdatedAt   time.Time  `db:"updated_at"`
	PaidAt      *time.Time `db:"paid_at"`
}

const payoutCols = `id, tenant_id, affiliate_id, user_id, currency_id, amount, rows, status, reference,
	created_at, updated_at, paid_at`

func (r storedPayout) domain() (referral.Payout, error) {
	return referral.Payout{ID: r.ID, TenantID: r.TenantID, AffiliateID: r.AffiliateID, UserID: r.UserID,
		CurrencyID: r.CurrencyID, Amount: r.Amount, Rows: r.Rows, Status: r.Status, Reference: r.Reference,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(), PaidAt: utcTimePtr(r.PaidAt)}, nil
}

// payoutCandidateRow is an affiliate a run considers.
type payoutCandidateRow struct {
	ID      uuid.UUID `db:"id"`
	UserID  string    `db:"user_id"`
	Status  string    `db:"status"`
	Deleted bool      `db:"deleted"`
}

// CreatePayouts runs a payout in currency over the tenant's live affiliates, or over those
// listed (deleted ones included), in one transaction:
//
//  1. one run per tenant and currency at a time (an advisory lock): a second run waits, then
//     finds the first one's rows taken;
//  2. the rows to pay are fixed once, into a temporary table: every available row of the
//     affiliates, in currency, not in a live payout — one snapshot, so a row committed meanwhile
//     (a reversal, a failed payout's release) cannot change a payout between its sum and its
//     rows;
//  3. referral.DecidePayout decides each affiliate from its net, row count and status;
//  4. the payouts and their rows are inserted in bulk, the rows in id order (ledger ids are
//     time-ordered, so the unique index over live payout rows grows mostly at its right edge).
//     That index refuses a row in two live payouts whatever the locks do.
//
// Errors: VALIDATION_FAILED (an affiliate id the tenant does not have).
func (s *Store) CreatePayouts(ctx context.Context, tenant, currency string, affiliates []uuid.UUID) (referral.PayoutRun, error) {
	var run referral.PayoutRun
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		run, err = s.createPayouts(ctx, tx, tenant, currency, affiliates)
		return err
	})
	if err != nil {
		return referral.PayoutRun{}, translate("create payouts", err)
	}
	return run, nil
}

func (s *Store) createPayouts(ctx context.Context, tx *sqlx.Tx, tenant, currency string, listed []uuid.UUID) (referral.PayoutRun, error) {
	run := referral.PayoutRun{Payouts: []referral.Payout{}, Skipped: []referral.PayoutSkip{}}
	now := s.now()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey("payout", tenant, currency)); err != nil {
		return run, fmt.Errorf("lock payout run: %w", err)
	}
	// The run sorts up to millions of row ids; in memory, not in temporary files.
	if _, err := tx.ExecContext(ctx, `SET LOCAL work_mem = '64MB'`); err != nil {
		return run, fmt.Errorf("size payout run: %w", err)
	}
	policy, err := loadPayoutPolicy(ctx, tx, tenant, false)
	if err != nil {
		return run, err
	}
	var cands []payoutCandidateRow
	if listed == nil {
		const q = `SELECT id, user_id, status, false AS deleted FROM affiliates
			WHERE tenant_id = $1 AND deleted_at IS NULL ORDER BY id`
		err = tx.SelectContext(ctx, &cands, q, tenant)
	} else {
		const q = `SELECT id, user_id, status, deleted_at IS NOT NULL AS deleted FROM affiliates
			WHERE tenant_id = $1 AND id = ANY($2::uuid[]) ORDER BY id`
		err = tx.SelectContext(ctx, &cands, q, tenant, uuidArray(listed))
	}
	if err != nil {
		return run, fmt.Errorf("load payout affiliates: %w", err)
	}
	if listed != nil {
		known := make(map[uuid.UUID]bool, len(cands))
		for _, c := range cands {
			known[c.ID] = true
		}
		for _, id := range listed {
			if !known[id] {
				return run, referral.Invalid("affiliate_ids", "affiliate "+id.String()+" not found")
			}
		}
	}
	if len(cands) == 0 {
		return run, nil
	}
	ids := make([]uuid.UUID, len(cands))
	for i, c := range cands {
		ids[i] = c.ID
	}
	const fix = `
		CREATE TEMPORARY TABLE payout_run ON COMMIT DROP AS
		SELECT c.id, c.affiliate_id, c.amount FROM commissions c
		WHERE c.tenant_id = $1 AND c.currency_id = $2 AND c.affiliate_id = ANY($3::uuid[]) AND c.available_at <= $4
		  AND NOT EXISTS (SELECT 1 FROM payout_rows pr WHERE pr.commission_id = c.id AND pr.live)`
	if _, err := tx.ExecContext(ctx, fix, tenant, currency, uuidArray(ids), now); err != nil {
		return run, fmt.Errorf("fix payout rows: %w", err)
	}
	var sums []struct {
		AffiliateID uuid.UUID `db:"affiliate_id"`
		Net         int64     `db:"net"`
		Rows        int       `db:"n"`
	}
	if err := tx.SelectContext(ctx, &sums, `SELECT affiliate_id, sum(amount)::bigint AS net, count(*) AS n FROM payout_run GROUP BY affiliate_id`); err != nil {
		return run, fmt.Errorf("sum payout rows: %w", err)
	}
	type sum struct {
		net  int64
		rows int
	}
	byAff := make(map[uuid.UUID]sum, len(sums))
	for _, x := range sums {
		byAff[x.AffiliateID] = sum{x.Net, x.Rows}
	}
	minimum := policy.Minimum(currency)
	var payIDs, payAffs []uuid.UUID
	for _, c := range cands {
		x := byAff[c.ID]
		pay, reason := referral.DecidePayout(referral.PayoutCandidate{AffiliateID: c.ID, UserID: c.UserID,
			Status: c.Status, Deleted: c.Deleted, Net: x.net, Rows: x.rows}, minimum)
		if !pay {
			run.Skipped = append(run.Skipped, referral.PayoutSkip{AffiliateID: c.ID, Reason: reason})
			continue
		}
		p := referral.Payout{ID: newLedgerID(), TenantID: tenant, AffiliateID: c.ID, UserID: c.UserID,
			CurrencyID: currency, Amount: x.net, Rows: x.rows, Status: referral.PayoutPending, CreatedAt: now, UpdatedAt: now}
		run.Payouts = append(run.Payouts, p)
		payIDs, payAffs = append(payIDs, p.ID), append(payAffs, c.ID)
	}
	if len(run.Payouts) == 0 {
		return run, nil
	}
	if err := insertPayouts(ctx, tx, run.Payouts); err != nil {
		return run, err
	}
	created := make([]outbox.Message, len(run.Payouts))
	for i, p := range run.Payouts {
		created[i] = outbox.Message{Type: outbox.PayoutCreated, Data: apishape.NewPayout(p)}
	}
	if err := publish(ctx, tx, tenant, now, created...); err != nil {
		return run, err
	}
	const rows = `
		INSERT INTO payout_rows (payout_id, commission_id)
		SELECT p.id, r.id FROM unnest($1::uuid[], $2::uuid[]) AS p(id, affiliate_id)
		JOIN payout_run r ON r.affiliate_id = p.affiliate_id
		ORDER BY r.id`
	if _, err := tx.ExecContext(ctx, rows, uuidArray(payIDs), uuidArray(payAffs)); err != nil {
		return run, fmt.Errorf("insert payout rows: %w", err)
	}
	return run, nil
}

func insertPayouts(ctx context.Context, tx *sqlx.Tx, ps []referral.Payout) error {
	n := len(ps)
	ids, affs, users := make([]uuid.UUID, n), make([]uuid.UUID, n), make([]string, n)
	amounts, rows := make([]int64, n), make([]int64, n)
	for i, p := range ps {
		ids[i], affs[i], users[i], amounts[i], rows[i] = p.ID, p.AffiliateID, p.UserID, p.Amount, int64(p.Rows)
	}
	const q = `
		INSERT INTO payouts (id, tenant_id, affiliate_id, user_id, currency_id, amount, rows, status, created_at, updated_at)
		SELECT t.id, $1, t.affiliate_id, t.user_id, $2, t.amount, t.rows, 'pending', $3, $3
		FROM unnest($4::uuid[], $5::uuid[], $6::text[], $7::bigint[], $8::int[]) AS t(id, affiliate_id, user_id, amount, rows)`
	_, err := tx.ExecContext(ctx, q, ps[0].TenantID, ps[0].CurrencyID, ps[0].CreatedAt, uuidArray(ids), uuidArray(affs),
		pq.StringArray(users), pq.Int64Array(amounts), pq.Int64Array(rows))
	if err != nil {
		return fmt.Errorf("insert payouts: %w", err)
	}
	return nil
}

// GetPayout returns a payout of the tenant. Errors: NOT_FOUND.
func (s *Store) GetPayout(ctx context.Context, tenant string, id uuid.UUID) (referral.Payout, error) {
	var out referral.Payout
	err := s.readTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		out, err = payoutByID(ctx, tx, tenant, id, false)
		return err
	})
	return out, err
}

func payoutByID(ctx context.Context, tx *sqlx.Tx, tenant string, id uuid.UUID, lock bool) (referral.Payout, error) {
	q := `SELECT ` + payoutCols + ` FROM payouts WHERE tenant_id = $1 AND id = $2`
	if lock {
		q += ` FOR UPDATE`
	}
	return getRow[storedPayout, referral.Payout](ctx, tx, "payout", q, tenant, id)
}

// ListPayouts returns a page of the tenant's payouts, newest first, and how many match f.
func (s *Store) ListPayouts(ctx context.Context, tenant string, f referral.PayoutFilter) ([]referral.Payout, int, error) {
	w := ledgerWhere{}
	w.add("tenant_id = %s", tenant)
	if f.AffiliateID != nil {
		w.add("affiliate_id = %s", *f.AffiliateID)
	}
	if f.Status != nil {
		w.add("status = %s", *f.Status)
	}
	if f.CurrencyID != nil {
		w.add("currency_id = %s", *f.CurrencyID)
	}
	var rows []storedPayout
	var total int
	err := s.readTx(ctx, func(tx *sqlx.Tx) error {
		if err := sqlx.GetContext(ctx, tx, &total, `SELECT count(*) FROM payouts WHERE `+w.sql(), w.args...); err != nil {
			return fmt.Errorf("count payouts: %w", err)
		}
		q := `SELECT ` + payoutCols + ` FROM payouts WHERE ` + w.sql() + ledgerOrder(false) + w.page(f.Limit, f.Offset)
		if err := sqlx.SelectContext(ctx, tx, &rows, q, w.args...); err != nil {
			return fmt.Errorf("list payouts: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	out, err := domainAll(rows)
	return out, total, err
}

// SetPayoutStatus moves a pending payout to paid (recording reference and paid_at) or failed
// (releasing its rows, which are available again: their membership stops being live).
// Errors: NOT_FOUND, INVALID_TRANSITION.
func (s *Store) SetPayoutStatus(ctx context.Context, tenant string, id uuid.UUID, status string, reference *string) (referral.Payout, error) {
	var out referral.Payout
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		p, err := payoutByID(ctx, tx, tenant, id, true)
		if err != nil {
			return err
		}
		if err := referral.CheckPayoutTransition(p.Status, status); err != nil {
			return err
		}
		now := s.now()
		var paidAt *time.Time
		if status == referral.PayoutPaid {
			paidAt = &now
		}
		const q = `UPDATE payouts SET status = $3, reference = COALESCE($4, reference), paid_at = $5, updated_at = $6
			WHERE tenant_id = $1 AND id = $2 RETURNING ` + payoutCols
		var row storedPayout
		if err := tx.GetContext(ctx, &row, q, tenant, id, status, reference, paidAt, now); err != nil {
			return fmt.Errorf("set payout status: %w", err)
		}
		if status == referral.PayoutFailed {
			// The payout's rows are among its affiliate's commissions in its currency.
			const release = `UPDATE payout_rows pr SET live = NULL FROM commissions c
				WHERE c.tenant_id = $1 AND c.currency_id = $2 AND c.affiliate_id = $3
				  AND pr.commission_id = c.id AND pr.live AND pr.payout_id = $4`
			if _, err := tx.ExecContext(ctx, release, tenant, p.CurrencyID, p.AffiliateID, id); err != nil {
				return fmt.Errorf("release payout rows: %w", err)
			}
		}
		if out, err = row.domain(); err != nil {
			return err
		}
		return publish(ctx, tx, tenant, now, outbox.Message{Type: outbox.PayoutStatusChanged, Data: apishape.NewPayout(out)})
	})
	return out, err
}

// AffiliateBalance returns the balance of affiliate id (deleted ones too: their rows stay
// payable) per currency, from one snapshot. Errors: NOT_FOUND.
func (s *Store) AffiliateBalance(ctx context.Context, tenant string, id uuid.UUID) ([]referral.Balance, error) {
	var out []referral.Balance
	err := transact(ctx, s.db, txSnapshot, func(tx *sqlx.Tx) error {
		var ok bool
		if err := tx.GetContext(ctx, &ok, `SELECT EXISTS (SELECT 1 FROM affiliates WHERE tenant_id = $1 AND id = $2)`, tenant, id); err != nil {
			return fmt.Errorf("check affiliate: %w", err)
		}
		if !ok {
			return referral.NotFound("affiliate")
		}
		var err error
		out, err = balances(ctx, tx, tenant, "affiliate_id = $2", id, s.now())
		return err
	})
	return out, err
}

// balances sums the tenant's commission rows matching cond (on $2 = arg) by currency and state.
func balances(ctx context.Context, tx *sqlx.Tx, tenant, cond string, arg any, now time.Time) ([]referral.Balance, error) {
	q := `SELECT currency_id, phoenix_commission_state(available_at, payout_status, $3) AS state,
		       sum(amount)::bigint AS sum, COALESCE(sum(-amount) FILTER (WHERE amount < 0), 0)::bigint AS reversed
		FROM ` + commissionStates + `
		WHERE tenant_id = $1 AND ` + cond + `
		GROUP BY 1, 2 ORDER BY 1, 2`
	var rows []struct {
		CurrencyID string `db:"currency_id"`
		State      string `db:"state"`
		Sum        int64  `db:"sum"`
		Reversed   int64  `db:"reversed"`
	}
	if err := tx.SelectContext(ctx, &rows, q, tenant, arg, now); err != nil {
		return nil, fmt.Errorf("sum balance: %w", err)
	}
	sums := make([]referral.StateSum, len(rows))
	for i, r := range rows {
		sums[i] = referral.StateSum{CurrencyID: r.CurrencyID, State: r.State, Sum: r.Sum, Reversed: r.Reversed}
	}
	return referral.Balances(sums), nil
}

// PayoutStatuses returns, for those of the tenant's commission rows ids that a live payout
// holds, that payout's status (the rest are absent).
func (s *Store) PayoutStatuses(ctx context.Context, tenant string, ids []uuid.UUID) (map[uuid.UUID]string, error) {
	out := make(map[uuid.UUID]string, len(ids))
	err := s.readTx(ctx, func(tx *sqlx.Tx) error {
		var rows []struct {
			ID     uuid.UUID `db:"commission_id"`
			Status string    `db:"status"`
		}
		const q = `SELECT pr.commission_id, p.status FROM payout_rows pr JOIN payouts p ON p.id = pr.payout_id
			WHERE pr.live AND p.tenant_id = $1 AND pr.commission_id = ANY($2::uuid[])`
		if err := tx.SelectContext(ctx, &rows, q, tenant, uuidArray(ids)); err != nil {
			return fmt.Errorf("read payout statuses: %w", err)
		}
		for _, r := range rows {
			out[r.ID] = r.Status
		}
		return nil
	})
	return out, err
}
