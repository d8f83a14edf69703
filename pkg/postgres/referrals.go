package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/outbox"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// storedReferral is a referrals row.
type storedReferral struct {
	ID          uuid.UUID  `db:"id"`
	TenantID    string     `db:"tenant_id"`
	CodeID      uuid.UUID  `db:"code_id"`
	Code        string     `db:"code"`
	CampaignID  *uuid.UUID `db:"campaign_id"`
	ReferrerID  *string    `db:"referrer_id"`
	RefereeID   string     `db:"referee_id"`
	Status      string     `db:"status"`
	Reason      *string    `db:"reason"`
	Metadata    []byte     `db:"metadata"`
	CreatedAt   time.Time  `db:"created_at"`
	UpdatedAt   time.Time  `db:"updated_at"`
	ConvertedAt *time.Time `db:"converted_at"`
	VerifiedAt  *time.Time `db:"verified_at"`
	RejectedAt  *time.Time `db:"rejected_at"`
	// The risk review (§12); ReviewState is NULL for a referral risk let through.
	ReviewState   *string        `db:"review_state"`
	ReviewReasons pq.StringArray `db:"review_reasons"`
	ReviewNote    *string        `db:"review_note"`
	ReviewedAt    *time.Time     `db:"reviewed_at"`
	// ImpressionID is the linked impression (§15); impression_source, its source copied at link
	// time, is read by the funnel only.
	ImpressionID *uuid.UUID `db:"impression_id"`
}

const referralCols = `id, tenant_id, code_id, code, campaign_id, referrer_id, referee_id, status,
	reason, metadata, created_at, updated_at, converted_at, verified_at, rejected_at,
	review_state, review_reasons, review_note, reviewed_at, impression_id`

func (r storedReferral) domain() referral.Referral {
	return referral.Referral{
		ID: r.ID, TenantID: r.TenantID, Code: r.Code, CodeID: r.CodeID, CampaignID: r.CampaignID,
		ReferrerID: r.ReferrerID, RefereeID: r.RefereeID, Status: r.Status, Reason: r.Reason,
		Metadata: json.RawMessage(r.Metadata), CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
		ConvertedAt: utcTimePtr(r.ConvertedAt), VerifiedAt: utcTimePtr(r.VerifiedAt),
		RejectedAt: utcTimePtr(r.RejectedAt), Review: r.review(), ImpressionID: r.ImpressionID,
	}
}

func (r storedReferral) review() *referral.Review {
	if r.ReviewState == nil {
		return nil
	}
	return &referral.Review{State: *r.ReviewState, Reasons: append([]string{}, r.ReviewReasons...),
		Note: r.ReviewNote, ReviewedAt: utcTimePtr(r.ReviewedAt)}
}

// ApplyCode makes player referee the referral of code (already normalised) per SPEC §4.3, runs
// the built-in referral.applied event in the same transaction, and returns the referral as it
// stands after that event together with the event's outcome. It locks the code, loads what the
// checks need and lets referral.CheckApply decide, so the checks run in the contract's order,
// first failure wins. After the checks the tenant's risk policy decides (applyFacts.decide, §12): a
// reject rolls everything back (no use counted), a hold makes the referral held.
// Errors: CODE_NOT_FOUND, CODE_INACTIVE, CODE_EXPIRED, SELF_REFERRAL, ALREADY_REFERRED,
// REFERRAL_CYCLE, CODE_EXHAUSTED, RISK_REJECTED (a *referral.RiskRejection).
//
// Concurrency: the referee's user lock (lockUsers) is taken first, so one player's applies run
// one after the other and each reads the referrals committed before it: a player's second
// apply answers ALREADY_REFERRED even when the code has no use left, as the check order says,
// and the player's events wait for the referral instead of missing it. The code row is then
// locked (FOR UPDATE) for the whole transaction, so its uses are current when checked, and its
// use is counted by a conditional UPDATE (uses < usage_limit), so uses never pass usage_limit;
// the count and the referral are written by one statement and roll back together, so uses
// equals the number of referrals made with the code; the unique index on (tenant_id,
// referee_id) refers a player at most once; an advisory lock on the unordered pair (referee,
// owner), taken after the row lock and before the ring is read, makes two players applying each
// other's codes run one after the other, so the second reads the first's referral and answers
// REFERRAL_CYCLE. Locks are taken in the order user, code, pair, impression (linkImpression),
// then (by the referral.applied event) the owner's affiliate; a deletion of that affiliate takes
// the code before the affiliate too.
//
// impression, when set, links the referral to that impression when referral.CanLink allows it
// (§15); otherwise the referral is made unlinked.
func (s *Store) ApplyCode(ctx context.Context, tenant, referee, code string, metadata json.RawMessage, impression *uuid.UUID) (referral.Referral, referral.EventOutcome, error) {
	// The code, locked, with the facts that cost no lock: whether the referee was referred, and
	// whether anything listens for referral.applied (a live campaign qualifying on it or a live,
	// active commission rule of it), without which the event needs nothing loaded.
	const find = `
		SELECT ` + codeCols + `,
		       EXISTS (SELECT 1 FROM referrals r WHERE r.tenant_id = $1 AND r.referee_id = $3) AS referred,
		       EXISTS (SELECT 1 FROM campaigns c
		               WHERE c.tenant_id = $1 AND c.deleted_at IS NULL AND c.qualifying_event = $4)
		       OR EXISTS (SELECT 1 FROM commission_rules cr
		               WHERE cr.tenant_id = $1 AND cr.deleted_at IS NULL AND cr.active AND cr.event_type = $4) AS listened
		FROM referral_codes
		WHERE tenant_id = $1 AND code = $2 AND deleted_at IS NULL
		FOR UPDATE`
	// One statement counts the use and records the referral: the INSERT only runs when the
	// UPDATE, conditional on the usage limit, counted.
	const apply = `
		WITH used AS (
		    UPDATE referral_codes SET uses = uses + 1
		    WHERE id = $3 AND (usage_limit IS NULL OR uses < usage_limit)
		    RETURNING id)
		INSERT INTO referrals (id, tenant_id, code_id, code, campaign_id, referrer_id, referee_id,
		    status, metadata, created_at, updated_at)
		SELECT $1, $2, used.id, $4, $5, $6, $7, 'pending', $8, $9, $9 FROM used
		RETURNING ` + referralCols
	if len(metadata) == 0 {
		metadata = json.RawMessage(`{}`)
	}
	var (
		out     referral.Referral
		outcome referral.EventOutcome
	)
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := lockUsers(ctx, tx, tenant, []string{referee}); err != nil {
			return err
		}
		now := s.now()
		var row struct {
			storedCode
			Referred bool `db:"referred"`
			Listened bool `db:"listened"`
		}
		if err := tx.GetContext(ctx, &row, find, tenant, code, referee, referral.ReferralAppliedEvent); err != nil {
			if isNoRows(err) {
				return referral.CheckApply(nil, referee, referral.ApplyFacts{}, now)
			}
			return fmt.Errorf("find code: %w", err)
		}
		c := row.domain()
		if c.OwnerUserID != nil {
			if err := lockReferralPair(ctx, tx, tenant, referee, *c.OwnerUserID); err != nil {
				return err
			}
		}
		// After the pair lock, so a referral of the pair committed meanwhile is seen.
		facts, err := s.loadApplyFacts(ctx, tx, tenant, referee, c.OwnerUserID, now)
		if err != nil {
			return err
		}
		if err := referral.CheckApply(&c, referee, referral.ApplyFacts{RefereeReferred: row.Referred,
			OwnerReferredByReferee: facts.OwnerReferred}, now); err != nil {
			return err
		}
		risk, err := facts.decide()
		if err != nil {
			return err
		}
		var made storedReferral
		if err := tx.GetContext(ctx, &made, apply, uuid.New(), tenant, c.ID, c.Code, c.CampaignID, c.OwnerUserID,
			referee, string(metadata), now); err != nil {
			if isNoRows(err) {
				// The row lock makes this unreachable: CheckApply saw the current uses.
				return fmt.Errorf("apply code: the usage limit refused a use the check allowed")
			}
			return translate("apply code", err)
		}
		out = made.domain()
		if err := s.linkImpression(ctx, tx, tenant, impression, c.ID, out.ID, now); err != nil {
			return err
		}
		if impression != nil {
			// The link may have set impression_id: publish the referral as it now stands.
			if out, err = referralByID(ctx, tx, tenant, out.ID, false); err != nil {
				return err
			}
		}
		// Published before the referral.applied event runs, so the feed tells the referral's
		// story in order: created (then held), then what the event paid and converted.
		if err := publish(ctx, tx, tenant, now, outbox.Message{Type: outbox.ReferralCreated,
			Data: apishape.NewAdminReferral(out)}); err != nil {
			return err
		}
		// A held referral's referral.applied event (afterApply) is deferred with it.
		if err := holdReferral(ctx, tx, tenant, &out, risk, now); err != nil {
			return err
		}
		if outcome, err = s.afterApply(ctx, tx, out, c.CampaignID, row.Listened, now); err != nil {
			return err
		}
		// The event (when something listens) may have changed the referral; otherwise it stands
		// as written above.
		if row.Listened {
			out, err = referralByID(ctx, tx, tenant, out.ID, false)
		}
		return err
	})
	return out, outcome, err
}

// afterApply runs the built-in referral.applied event of ref, a referral just made with a code
// bound to campaign (nil: none), in tx, whose caller holds the referee's lock. When something
// listens for the event (listened) the engine loads its state as for any event; otherwise it
// decides from ref alone (no campaign, no rule: the event pays nothing and changes nothing).
func (s *Store) afterApply(ctx context.Context, tx *sqlx.Tx, ref referral.Referral, campaign *uuid.UUID, listened bool, now time.Time) (referral.EventOutcome, error) {
	payload, err := json.Marshal(map[string]string{"code": ref.Code, "referral_id": ref.ID.String()})
	if err != nil {
		return referral.EventOutcome{}, fmt.Errorf("encode event payload: %w", err)
	}
	ev := referral.Event{TenantID: ref.TenantID, EventID: "referral.applied:" + ref.ID.String(),
		Type: referral.ReferralAppliedEvent, UserID: ref.RefereeID, OccurredAt: now, Payload: payload}
	load := s.loadEngine
	if !listened {
		load = func(context.Context, *sqlx.Tx, string, []referral.Event, bool) (*referral.Engine, error) {
			return &referral.Engine{Affiliates: map[string]*referral.Affiliate{}, Upline: map[uuid.UUID]*referral.Affiliate{},
				Referrals: map[string]*referral.ReferralState{ref.RefereeID: {Referral: ref, BoundCampaign: campaign,
					Qualified: map[uuid.UUID]bool{}}}}, nil
		}
	}
	outs, err := s.decideBatch(ctx, tx, ref.TenantID, []referral.Event{ev}, false, load)
	if err != nil {
		return referral.EventOutcome{}, fmt.Errorf("referral.applied event: %w", err)
	}
	return outs[0], nil
}

// lockReferralPair takes the transaction-scoped advisory lock of the unordered pair of users
// {a, b} in the tenant. The key is hashed here and sent as a literal, which costs one round
// trip instead of a parameterised statement's two; a hash collision only makes two unrelated
// applies wait for each other.
func lockReferralPair(ctx context.Context, tx *sqlx.Tx, tenant, a, b string) error {
	if b < a {
		a, b = b, a
	}
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock("+strconv.FormatInt(lockKey("referral-pair", tenant, a, b), 10)+")"); err != nil {
		return fmt.Errorf("lock referral pair: %w", err)
	}
	return nil
}

// lockUsers takes the transaction-scoped advisory lock of each of the tenant's users, in key
// order, so transactions locking several users never wait on each other in a circle (a lock
// already held is taken again at no cost). Apply-code takes its referee's lock before anything
// else and event processing its events' users' locks before reading their referrals, so one
// user's apply and events run one after the other: an event meets a referral that was still
// committing, and a referral made after an event was processed is dated after it.
func lockUsers(ctx context.Context, tx *sqlx.Tx, tenant string, users []string) error {
	keys := make([]int64, 0, len(users))
	for _, u := range users {
		keys = append(keys, lockKey("user", tenant, u))
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	// unnest yields the keys in array order, so the locks are taken in that order.
	const q = `SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1::bigint[]) AS k`
	if _, err := tx.ExecContext(ctx, q, pq.Int64Array(keys)); err != nil {
		return fmt.Errorf("lock users: %w", err)
	}
	return nil
}

// lockKey hashes parts (FNV-1a, 64 bits) into an advisory lock key.
func lockKey(parts ...string) int64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return int64(h.Sum64())
}

// GetReferral returns a referral of the tenant. Errors: NOT_FOUND.
func (s *Store) GetReferral(ctx context.Context, tenant string, id uuid.UUID) (referral.Referral, error) {
	var out referral.Referral
	err := s.readTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		out, err = referralByID(ctx, tx, tenant, id, false)
		return err
	})
	return out, err
}

// referralByID loads a referral, locking it FOR UPDATE when lock is set.
func referralByID(ctx context.Context, tx *sqlx.Tx, tenant string, id uuid.UUID, lock bool) (referral.Referral, error) {
	q := `SELECT ` + referralCols + ` FROM referrals WHERE tenant_id = $1 AND id = $2`
	if lock {
		q += ` FOR UPDATE`
	}
	var row storedReferral
	if err := tx.GetContext(ctx, &row, q, tenant, id); err != nil {
		if isNoRows(err) {
			return referral.Referral{}, referral.NotFound("referral")
		}
		return referral.Referral{}, fmt.Errorf("get referral: %w", err)
	}
	return row.domain(), nil
}

// ListReferrals returns a page of the tenant's referrals, newest first, and the total count.
func (s *Store) ListReferrals(ctx context.Context, tenant string, f referral.ReferralFilter) ([]referral.Referral, int, error) {
	const where = ` FROM referrals WHERE tenant_id = $1
		AND ($2::uuid IS NULL OR campaign_id = $2)
		AND ($3::text IS NULL OR code = $3)
		AND ($4::text IS NULL OR referrer_id = $4)
		AND ($5::text IS NULL OR referee_id = $5)
		AND ($6::text IS NULL OR status = $6)
		AND ($7::timestamptz IS NULL OR created_at >= $7)
		AND ($8::timestamptz IS NULL OR created_at < $8)
		AND ($9::text IS NULL OR review_state = $9)`
	const q = `SELECT ` + referralCols + where + ` ORDER BY created_at DESC, id DESC LIMIT $10 OFFSET $11`
	const count = `SELECT count(*)` + where
	args := []any{tenant, f.CampaignID, f.Code, f.ReferrerID, f.RefereeID, f.Status, f.CreatedFrom, f.CreatedTo, f.Review}
	var (
		out   []referral.Referral
		total int
	)
	err := s.readTx(ctx, func(tx *sqlx.Tx) error {
		var rows []storedReferral
		if err := tx.SelectContext(ctx, &rows, q, append(args, f.Limit, f.Offset)...); err != nil {
			return fmt.Errorf("list referrals: %w", err)
		}
		if err := tx.GetContext(ctx, &total, count, args...); err != nil {
			return fmt.Errorf("count referrals: %w", err)
		}
		out = make([]referral.Referral, 0, len(rows))
		for _, r := range rows {
			out = append(out, r.domain())
		}
		return nil
	})
	return out, total, err
}

// SetReferralStatus moves a referral to status (verified or rejected), recording reason and
// the time of the change. Errors: NOT_FOUND, INVALID_TRANSITION.
func (s *Store) SetReferralStatus(ctx context.Context, tenant string, id uuid.UUID, status string, reason *string) (referral.Referral, error) {
	const q = `
		UPDATE referrals SET status = $3, reason = $4, updated_at = $5,
		    verified_at = CASE WHEN $3 = 'verified' THEN $5 ELSE verified_at END,
		    rejected_at = CASE WHEN $3 = 'rejected' THEN $5 ELSE rejected_at END
		WHERE tenant_id = $1 AND id = $2
		RETURNING ` + referralCols
	var out referral.Referral
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		cur, err := referralByID(ctx, tx, tenant, id, true)
		if err != nil {
			return err
		}
		if err := referral.CheckStatusChange(cur, status); err != nil {
			return err
		}
		now := s.now()
		var row storedReferral
		if err := tx.GetContext(ctx, &row, q, tenant, id, status, reason, now); err != nil {
			return fmt.Errorf("set referral status: %w", err)
		}
		out = row.domain()
		return publish(ctx, tx, tenant, now, outbox.Message{Type: outbox.ReferralStatusChanged, Data: apishape.NewAdminReferral(out)})
	})
	return out, err
}

// ReferralStats counts the tenant's referrals created within period, up to now, optionally only
// those of one campaign.
func (s *Store) ReferralStats(ctx context.Context, tenant string, period referral.Period, campaignID *uuid.UUID) (referral.ReferralStats, error) {
	const q = `
		SELECT count(*) AS total,
		       count(*) FILTER (WHERE phoenix_successful(status)) AS successful,
		       count(*) FILTER (WHERE status = 'pending') AS pending,
		       count(*) FILTER (WHERE status = 'rejected') AS rejected
		FROM referrals
		WHERE tenant_id = $1 AND ($2::timestamptz IS NULL OR created_at >= $2)
		  AND ($3::uuid IS NULL OR campaign_id = $3)`
	var out referral.ReferralStats
	err := s.readTx(ctx, func(tx *sqlx.Tx) error {
		var row struct {
			Total      int64 `db:"total"`
			Successful int64 `db:"successful"`
			Pending    int64 `db:"pending"`
			Rejected   int64 `db:"rejected"`
		}
		if err := tx.GetContext(ctx, &row, q, tenant, period.Start(s.now()), campaignID); err != nil {
			return fmt.Errorf("referral stats: %w", err)
		}
		out = referral.ReferralStats(row)
		return nil
	})
	return out, err
}

// Leaderboard ranks the referrers of the tenant's referrals created within period, up to now:
// successful referrals descending, then total descending, then user id in byte order. Referrals
// without a referrer (admin codes) do not count.
func (s *Store) Leaderboard(ctx context.Context, tenant string, period referral.Period, limit int) ([]referral.LeaderboardEntry, error) {
	var out []referral.LeaderboardEntry
	err := s.readTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		out, err = leaderboard(ctx, tx, tenant, period.Start(s.now()), &limit)
		return err
	})
	return out, err
}

// leaderboard ranks through q the referrers of the tenant's referrals created at or after since
// (nil: all time), the first limit of them (nil: all), as Leaderboard says.
func leaderboard(ctx context.Context, q sqlx.QueryerContext, tenant string, since *time.Time, limit *int) ([]referral.LeaderboardEntry, error) {
	const sel = `
		SELECT referrer_id AS user_id,
		       count(*) FILTER (WHERE phoenix_successful(status)) AS successful,
		       count(*) AS total
		FROM referrals
		WHERE tenant_id = $1 AND referrer_id IS NOT NULL AND ($2::timestamptz IS NULL OR created_at >= $2)
		GROUP BY referrer_id
		ORDER BY successful DESC, total DESC, referrer_id COLLATE "C"
		LIMIT $3`
	var rows []struct {
		UserID     string `db:"user_id"`
		Successful int64  `db:"successful"`
		Total      int64  `db:"total"`
	}
	if err := sqlx.SelectContext(ctx, q, &rows, sel, tenant, since, limit); err != nil {
		return nil, fmt.Errorf("leaderboard: %w", err)
	}
	out := make([]referral.LeaderboardEntry, 0, len(rows))
	for i, r := range rows {
		out = append(out, referral.LeaderboardEntry{Rank: i + 1, UserID: r.UserID, Successful: r.Successful, Total: r.Total})
	}
	return out, nil
}
