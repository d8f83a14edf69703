package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/outbox"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// Signal kinds of risk_signals.kind.
const (
	signalDevice  = 1
	signalAddress = 2
)

// pruneBatch bounds how many signals one pruning statement deletes, so the pruner never holds
// many row locks or writes a large transaction at once.
const pruneBatch = 5000

// RecordSignals stores sightings of users' devices and addresses (§12), keeping per user and
// value the latest time it was seen. Signals without a device id and an address hash are
// skipped.
func (s *Store) RecordSignals(ctx context.Context, sigs []referral.Signal) error {
	var tenants, users, values []string
	var kinds []int64
	var seen []string
	add := func(sig referral.Signal, kind int64, value []byte) {
		tenants, users, kinds = append(tenants, sig.TenantID), append(users, sig.UserID), append(kinds, kind)
		values = append(values, `\x`+fmt.Sprintf("%x", value))
		seen = append(seen, sig.SeenAt.UTC().Format(time.RFC3339Nano))
	}
	for _, sig := range sigs {
		if sig.DeviceID != "" {
			add(sig, signalDevice, []byte(sig.DeviceID))
		}
		if len(sig.AddressHash) > 0 {
			add(sig, signalAddress, sig.AddressHash)
		}
	}
	if len(kinds) == 0 {
		return nil
	}
	// One autocommitted statement (a player's every request records its signals, so a
	// transaction's BEGIN and COMMIT would triple the round trips): its rows are upserted in key
	// order, so concurrent recorders lock them in one order and cannot deadlock. Only a later
	// sighting moves seen_at: a late report never makes a signal look older. It commits without
	// waiting for the disk (asyncCommit): signals inform risk decisions, and one lost in a crash
	// is seen again at the player's next request.
	const q = `
		INSERT INTO risk_signals (tenant_id, user_id, kind, value, seen_at)
		SELECT t.tenant_id, t.user_id, t.kind, t.value, max(t.seen_at)
		FROM unnest($1::text[], $2::text[], $3::smallint[], $4::bytea[], $5::timestamptz[])
		     AS t(tenant_id, user_id, kind, value, seen_at), ` + asyncCommit + `
		GROUP BY 1, 2, 3, 4
		ORDER BY 1, 2, 3, 4
		ON CONFLICT (tenant_id, user_id, kind, value) DO UPDATE SET seen_at = EXCLUDED.seen_at
		WHERE risk_signals.seen_at < EXCLUDED.seen_at`
	_, err := s.db.ExecContext(ctx, q, pq.StringArray(tenants), pq.StringArray(users), pq.Int64Array(kinds),
		pq.StringArray(values), pq.StringArray(seen))
	if err != nil {
		return fmt.Errorf("record signals: %w", err)
	}
	return nil
}

// PruneSignals deletes the signals last seen longer than retention ago, pruneBatch rows per
// transaction, oldest first, and returns how many it deleted.
func (s *Store) PruneSignals(ctx context.Context, retention time.Duration) (int64, error) {
	const q = `
		DELETE FROM risk_signals WHERE ctid = ANY (ARRAY(
		    SELECT ctid FROM risk_signals WHERE seen_at < $1 ORDER BY seen_at LIMIT $2))`
	cutoff := s.now().Add(-retention)
	var total int64
	for {
		var n int64
		err := transact(ctx, s.db, txPrivate, func(tx *sqlx.Tx) error {
			res, err := tx.ExecContext(ctx, q, cutoff, pruneBatch)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return total, fmt.Errorf("prune signals: %w", err)
		}
		total += n
		if n < pruneBatch {
			return total, nil
		}
	}
}

// storedRiskPolicy is a risk_policies row.
type storedRiskPolicy struct {
	TenantID           string    `db:"tenant_id"`
	Active             bool      `db:"active"`
	SameDevice         string    `db:"same_device"`
	SameAddress        string    `db:"same_address"`
	AddressWindowHours int       `db:"address_window_hours"`
	VelocityMax        *int      `db:"velocity_max"`
	VelocityHours      *int      `db:"velocity_hours"`
	VelocityAction     *string   `db:"velocity_action"`
	UpdatedAt          time.Time `db:"updated_at"`
}

const riskPolicyCols = `tenant_id, active, same_device, same_address, address_window_hours,
	velocity_max, velocity_hours, velocity_action, updated_at`

func (r storedRiskPolicy) domain() referral.RiskPolicy {
	p := referral.RiskPolicy{TenantID: r.TenantID, Active: r.Active, SameDevice: r.SameDevice,
		SameAddress: r.SameAddress, AddressWindowHours: r.AddressWindowHours, UpdatedAt: r.UpdatedAt.UTC()}
	if r.VelocityMax != nil && r.VelocityHours != nil && r.VelocityAction != nil {
		p.Velocity = &referral.Velocity{MaxReferrals: *r.VelocityMax, PerHours: *r.VelocityHours, Action: *r.VelocityAction}
	}
	return p
}

// GetRiskPolicy returns the tenant's risk policy, or referral.DefaultRiskPolicy (zero
// UpdatedAt) when none was ever set.
func (s *Store) GetRiskPolicy(ctx context.Context, tenant string) (referral.RiskPolicy, error) {
	var out referral.RiskPolicy
	err := s.readTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		out, err = riskPolicy(ctx, tx, tenant)
		return err
	})
	return out, err
}

func riskPolicy(ctx context.Context, tx *sqlx.Tx, tenant string) (referral.RiskPolicy, error) {
	const q = `SELECT ` + riskPolicyCols + ` FROM risk_policies WHERE tenant_id = $1`
	var row storedRiskPolicy
	if err := tx.GetContext(ctx, &row, q, tenant); err != nil {
		if isNoRows(err) {
			return referral.DefaultRiskPolicy(tenant), nil
		}
		return referral.RiskPolicy{}, fmt.Errorf("get risk policy: %w", err)
	}
	return row.domain(), nil
}

// PutRiskPolicy creates or replaces the tenant's risk policy and returns it. Errors:
// VALIDATION_FAILED (RiskPolicy.Validate).
func (s *Store) PutRiskPolicy(ctx context.Context, p referral.RiskPolicy) (referral.RiskPolicy, error) {
	const q = `
		INSERT INTO risk_policies (tenant_id, active, same_device, same_address, address_window_hours,
		    velocity_max, velocity_hours, velocity_action, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (tenant_id) DO UPDATE SET active = EXCLUDED.active, same_device = EXCLUDED.same_device,
		    same_address = EXCLUDED.same_address, address_window_hours = EXCLUDED.address_window_hours,
		    velocity_max = EXCLUDED.velocity_max, velocity_hours = EXCLUDED.velocity_hours,
		    velocity_action = EXCLUDED.velocity_action, updated_at = EXCLUDED.updated_at
		RETURNING ` + riskPolicyCols
	if err := p.Validate(); err != nil {
		return referral.RiskPolicy{}, err
	}
	var vMax, vHours *int
	var vAction *string
	if v := p.Velocity; v != nil {
		vMax, vHours, vAction = &v.MaxReferrals, &v.PerHours, &v.Action
	}
	var out referral.RiskPolicy
	err := transact(ctx, s.db, txPrivate, func(tx *sqlx.Tx) error {
		var row storedRiskPolicy
		if err := tx.GetContext(ctx, &row, q, p.TenantID, p.Active, p.SameDevice, p.SameAddress,
			p.AddressWindowHours, vMax, vHours, vAction, s.now()); err != nil {
			return fmt.Errorf("put risk policy: %w", err)
		}
		out = row.domain()
		return nil
	})
	return out, err
}

// assessRiskQuery loads a tenant's risk policy ($1; the defaults $6–$9 when none is stored) and
// the facts of referee $2 applying to referrer $3's code at $4 with signals counting from $5,
// and whether referrer $3 was referred by referee $2.
const assessRiskQuery = `
	WITH stored AS (
	         SELECT active, same_device, same_address, address_window_hours, velocity_max,
	                velocity_hours, velocity_action
	         FROM risk_policies WHERE tenant_id = $1),
	     p AS (SELECT * FROM stored
	           UNION ALL
	           SELECT $6::boolean, $7::text, $8::text, $9::int, NULL::int, NULL::int, NULL::text
	           WHERE NOT EXISTS (SELECT 1 FROM stored))
	SELECT p.*,
	    p.active AND EXISTS (SELECT 1 FROM risk_signals a JOIN risk_signals b
	                ON b.tenant_id = a.tenant_id AND b.user_id = $3 AND b.kind = a.kind AND b.value = a.value
	            WHERE a.tenant_id = $1 AND a.user_id = $2 AND a.kind = 1
	              AND a.seen_at >= $5 AND b.seen_at >= $5) AS found_device,
	    p.active AND EXISTS (SELECT 1 FROM risk_signals a JOIN risk_signals b
	                ON b.tenant_id = a.tenant_id AND b.user_id = $3 AND b.kind = a.kind AND b.value = a.value
	            WHERE a.tenant_id = $1 AND a.user_id = $2 AND a.kind = 2
	              AND a.seen_at >= $4::timestamptz - make_interval(hours => p.address_window_hours)
	              AND b.seen_at >= $4::timestamptz - make_interval(hours => p.address_window_hours)) AS found_address,
	    CASE WHEN p.active THEN (SELECT count(*) FROM (
	         SELECT 1 FROM referrals r
	         WHERE r.tenant_id = $1 AND r.referrer_id = $3
	           AND r.created_at >= $4::timestamptz - make_interval(hours => p.velocity_hours)
	         LIMIT p.velocity_max) AS v) ELSE 0 END AS recent_referrals,
	    EXISTS (SELECT 1 FROM referrals r WHERE r.tenant_id = $1 AND r.referee_id = $3 AND r.referrer_id = $2) AS owner_referred
	FROM p`

// applyFacts is what ApplyCode reads in one statement after the pair lock: the tenant's risk
// policy (the defaults of referral.DefaultRiskPolicy when none is stored), the facts it decides
// on (§12), and whether the code's owner was referred by the referee (a cycle, §4.3).
type applyFacts struct {
	storedRiskPolicy
	FoundDevice     bool `db:"found_device"`
	FoundAddress    bool `db:"found_address"`
	RecentReferrals int  `db:"recent_referrals"`
	OwnerReferred   bool `db:"owner_referred"`
}

// loadApplyFacts loads the applyFacts of referee applying to a code owned by referrer (nil: an
// admin code) at now. Each fact is one walk of an index: the referee's signals are a range of
// risk_signals' primary key and each is probed in the referrer's range; the velocity count walks
// (tenant_id, referrer_id, created_at) and stops at max_referrals; the cycle is a probe of the
// unique (tenant_id, referee_id). An inactive policy looks no signal up.
func (s *Store) loadApplyFacts(ctx context.Context, tx *sqlx.Tx, tenant, referee string, referrer *string, now time.Time) (applyFacts, error) {
	var row applyFacts
	def := referral.DefaultRiskPolicy(tenant)
	if err := tx.GetContext(ctx, &row, assessRiskQuery, tenant, referee, referrer, now, now.Add(-s.SignalRetention),
		def.Active, def.SameDevice, def.SameAddress, def.AddressWindowHours); err != nil {
		return applyFacts{}, fmt.Errorf("assess risk: %w", err)
	}
	return row, nil
}

// decide lets referral.EvaluateRisk decide the apply under the policy; a reject is returned as a
// *referral.RiskRejection. An inactive policy allows whatever the facts.
func (f applyFacts) decide() (referral.RiskDecision, error) {
	d := referral.EvaluateRisk(f.domain(), referral.RiskFacts{SameDevice: f.FoundDevice,
		SameAddress: f.FoundAddress, RecentReferrals: f.RecentReferrals})
	if d.Action == referral.RiskReject {
		return d, &referral.RiskRejection{Reasons: d.Reasons}
	}
	return d, nil
}

// holdReferral puts ref, a referral just made, on hold when d says so (§12): it earns nothing
// until an admin reviews it; ref is refreshed, and referral.held is published with the reasons.
func holdReferral(ctx context.Context, tx *sqlx.Tx, tenant string, ref *referral.Referral, d referral.RiskDecision, now time.Time) error {
	if d.Action != referral.RiskHold {
		return nil
	}
	const q = `UPDATE referrals SET review_state = 'held', review_reasons = $3 WHERE tenant_id = $1 AND id = $2
		RETURNING ` + referralCols
	var row storedReferral
	if err := tx.GetContext(ctx, &row, q, tenant, ref.ID, pq.StringArray(d.Reasons)); err != nil {
		return fmt.Errorf("hold referral: %w", err)
	}
	*ref = row.domain()
	return publish(ctx, tx, tenant, now, outbox.Message{Type: outbox.ReferralHeld, Data: apishape.NewAdminReferral(*ref)})
}
