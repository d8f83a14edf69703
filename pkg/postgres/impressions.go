package postgres

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// Impressions are written in batches: every click is a write (§15), and one transaction per
// click would spend a commit — a WAL flush — on each. RecordImpression queues the impression and
// waits; up to impressionWriters goroutines take what is queued, at most maxImpressionBatch at a
// time, and write each batch with one statement (writeImpressionBatch). A caller returns once its
// batch has committed, so an acknowledged impression is durable; under load, batches grow by
// themselves while the previous one commits. The writers exist only while there is something to
// write.
const (
	impressionWriters      = 4
	maxImpressionBatch     = 500
	impressionWriteTimeout = 30 * time.Second
)

// impressionQueue is the queue of impressions waiting for a writer.
type impressionQueue struct {
	mu      sync.Mutex
	pending []*pendingImpression
	writers int
	// busy marks the counter shards of the running writers.
	busy [impressionWriters]bool
}

// pendingImpression is one queued impression and, once done is closed, its outcome.
type pendingImpression struct {
	in   referral.NewImpression
	out  referral.RecordedImpression
	err  error
	done chan struct{}
}

// RecordImpression records an impression of in.Code (normalised) when referral.ImpressionValid
// says it counts now, and counts it in its code's counter of the current day and source. It
// returns once the impression has committed. Impressions are not written to the change log.
func (s *Store) RecordImpression(ctx context.Context, in referral.NewImpression) (referral.RecordedImpression, error) {
	p := &pendingImpression{in: in, done: make(chan struct{})}
	q := &s.impressions
	q.mu.Lock()
	q.pending = append(q.pending, p)
	shard := -1
	if q.writers < impressionWriters {
		q.writers++
		shard = slices.Index(q.busy[:], false)
		q.busy[shard] = true
	}
	q.mu.Unlock()
	if shard >= 0 {
		go s.writeImpressions(shard)
	}
	select {
	case <-p.done:
		return p.out, p.err
	case <-ctx.Done():
		return referral.RecordedImpression{}, ctx.Err()
	}
}

// writeImpressions writes queued batches until the queue is empty, adding to counter shard.
func (s *Store) writeImpressions(shard int) {
	q := &s.impressions
	for {
		q.mu.Lock()
		n := min(len(q.pending), maxImpressionBatch)
		if n == 0 {
			q.writers--
			q.busy[shard] = false
			q.mu.Unlock()
			return
		}
		batch := q.pending[:n:n]
		q.pending = append([]*pendingImpression(nil), q.pending[n:]...)
		q.mu.Unlock()
		outs, err := s.writeImpressionBatch(batch, shard)
		if err != nil && len(batch) > 1 {
			// Whatever PostgreSQL refused (input the handlers let through, a passing failure)
			// must not fail the others of the batch: each is written alone, once.
			for _, p := range batch {
				out, err := s.writeImpressionBatch([]*pendingImpression{p}, shard)
				deliver(p, out, err)
			}
			continue
		}
		for i, p := range batch {
			if err != nil {
				deliver(p, nil, err)
				continue
			}
			deliver(p, outs[i:i+1], nil)
		}
	}
}

// deliver hands a pending impression its outcome (out holds it unless err is set).
func deliver(p *pendingImpression, out []referral.RecordedImpression, err error) {
	if err == nil {
		p.out = out[0]
	}
	p.err = err
	close(p.done)
}

// writeImpressionBatch decides and writes one batch with one statement, which PostgreSQL runs
// as one transaction: it finds each impression's live code, keeps those phoenix_code_valid (the
// SQL form of referral.ImpressionValid) admits, inserts them and adds them to their counters,
// and answers which of the batch were recorded. One statement is one round trip, where a
// transaction of several would spend four; it runs outside transact because the only locks it
// takes that another writer can hold are its counter rows, taken in key order (ORDER BY), so it
// cannot deadlock, and it commits or fails whole. The writers of one gateway add to their own
// counter shards and so never wait for each other. Its context is its own: the batch is shared by
// callers, none of whom may cancel the others' writes.
func (s *Store) writeImpressionBatch(batch []*pendingImpression, shard int) ([]referral.RecordedImpression, error) {
	const q = `
		WITH input AS (
		    SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::text[])
		        WITH ORDINALITY AS u(tenant_id, code, id, source, hash, metadata, ord)),
		valid AS (
		    SELECT i.*, c.id AS code_id FROM input i
		    CROSS JOIN LATERAL (
		        SELECT id, active, expires_at, usage_limit, uses FROM referral_codes
		        WHERE tenant_id = i.tenant_id AND code = i.code AND deleted_at IS NULL
		        LIMIT 1) c
		    WHERE phoenix_code_valid(c.active, c.expires_at, c.usage_limit, c.uses, $7)),
		ins AS (
		    INSERT INTO impressions (id, tenant_id, code_id, source, address_hash, metadata, created_at)
		    SELECT id, tenant_id, code_id, source, decode(hash, 'hex'), metadata::jsonb, $7 FROM valid
		    RETURNING tenant_id, code_id, source),
		counted AS (
		    INSERT INTO impression_counts AS c (tenant_id, code_id, source, day, shard, impressions)
		    SELECT tenant_id, code_id, coalesce(source, ''), $8, $9, count(*) FROM ins
		    GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
		    ON CONFLICT (tenant_id, code_id, source, day, shard) DO UPDATE SET impressions = c.impressions + excluded.impressions)
		SELECT ord FROM valid`
	now := s.now()
	n := len(batch)
	tenants, codes, ids := make([]string, n), make([]string, n), make([]string, n)
	sources, hashes, metas := make([]sql.NullString, n), make([]sql.NullString, n), make([]string, n)
	uuids := make([]uuid.UUID, n)
	for i, p := range batch {
		uuids[i] = uuid.New()
		tenants[i], codes[i], ids[i] = p.in.TenantID, p.in.Code, uuids[i].String()
		sources[i] = nullString(p.in.Source)
		hashes[i] = sql.NullString{String: hex.EncodeToString(p.in.AddressHash), Valid: p.in.AddressHash != nil}
		metas[i] = string(p.in.Metadata)
		if metas[i] == "" {
			metas[i] = `{}`
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), impressionWriteTimeout)
	defer cancel()
	var recorded []int
	if err := s.db.SelectContext(ctx, &recorded, q, pq.Array(tenants), pq.Array(codes), pq.Array(ids),
		pq.Array(sources), pq.Array(hashes), pq.Array(metas), now, referral.ImpressionBucketStart(now), shard); err != nil {
		return nil, fmt.Errorf("record impressions: %w", err)
	}
	outs := make([]referral.RecordedImpression, n)
	for _, ord := range recorded {
		outs[ord-1] = referral.RecordedImpression{ID: &uuids[ord-1], Valid: true}
	}
	return outs, nil
}

// nullString is s as a nullable SQL string.
func nullString(s *string) sql.NullString {
	if s == nil {
		return sql.NullString{}
	}
	return sql.NullString{String: *s, Valid: true}
}

// linkImpression links the new referral referralID, made with code codeID at now, to impression
// id when referral.CanLink allows it, within apply-code's transaction. Two applies that could
// both link one impression are applies of its code, whose row lock already runs them one after
// the other; the impression row is locked (FOR UPDATE) all the same, so the rule holds without
// relying on that, and the unique index on referrals.impression_id backs it. The second apply
// reads the first's link and leaves its referral unlinked. An unknown id (another
// tenant's, pruned, never recorded) links nothing: an impression never blocks a referral.
func (s *Store) linkImpression(ctx context.Context, tx *sqlx.Tx, tenant string, id *uuid.UUID, codeID, referralID uuid.UUID, now time.Time) error {
	if id == nil {
		return nil
	}
	const find = `
		SELECT code_id, source, created_at, referral_id FROM impressions
		WHERE id = $1 AND tenant_id = $2 FOR UPDATE`
	const link = `
		WITH imp AS (UPDATE impressions SET referral_id = $1 WHERE id = $2 RETURNING id, source)
		UPDATE referrals r SET impression_id = imp.id, impression_source = imp.source
		FROM imp WHERE r.id = $1`
	var row struct {
		CodeID     uuid.UUID  `db:"code_id"`
		Source     *string    `db:"source"`
		CreatedAt  time.Time  `db:"created_at"`
		ReferralID *uuid.UUID `db:"referral_id"`
	}
	if err := tx.GetContext(ctx, &row, find, *id, tenant); err != nil {
		if isNoRows(err) {
			return nil
		}
		return fmt.Errorf("find impression: %w", err)
	}
	imp := referral.Impression{ID: *id, TenantID: tenant, CodeID: row.CodeID, Source: row.Source,
		CreatedAt: row.CreatedAt, ReferralID: row.ReferralID}
	if !referral.CanLink(imp, codeID, now, s.ImpressionTTL) {
		return nil
	}
	if _, err := tx.ExecContext(ctx, link, referralID, *id); err != nil {
		return fmt.Errorf("link impression: %w", err)
	}
	return nil
}

// Funnel counts the tenant's impressions (from the counters of the UTC days overlapping the
// period) and the referrals created within the period, up to now, broken down by source.
func (s *Store) Funnel(ctx context.Context, tenant string, f referral.FunnelFilter) (referral.Funnel, error) {
	const impressions = `
		SELECT nullif(source, '') AS source, sum(impressions) AS n
		FROM impression_counts
		WHERE tenant_id = $1 AND ($2::timestamptz IS NULL OR day >= $2)
		  AND ($3::uuid IS NULL OR code_id IN (SELECT id FROM referral_codes WHERE tenant_id = $1 AND campaign_id = $3))
		  AND ($4::text IS NULL OR code_id IN (SELECT id FROM referral_codes WHERE tenant_id = $1 AND code = $4))
		GROUP BY 1`
	const referrals = `
		SELECT impression_source AS source, count(*) AS n,
		       count(*) FILTER (WHERE phoenix_successful(status)) AS successful,
		       count(impression_id) AS linked
		FROM referrals
		WHERE tenant_id = $1 AND ($2::timestamptz IS NULL OR created_at >= $2)
		  AND ($3::uuid IS NULL OR campaign_id = $3) AND ($4::text IS NULL OR code = $4)
		GROUP BY 1`
	start := f.Period.Start(s.now())
	var bucket *time.Time
	if start != nil {
		b := referral.ImpressionBucketStart(*start)
		bucket = &b
	}
	var out referral.Funnel
	err := transact(ctx, s.db, txSnapshot, func(tx *sqlx.Tx) error {
		var imps []struct {
			Source *string `db:"source"`
			N      int64   `db:"n"`
		}
		if err := tx.SelectContext(ctx, &imps, impressions, tenant, bucket, f.CampaignID, f.Code); err != nil {
			return fmt.Errorf("funnel impressions: %w", err)
		}
		var refs []struct {
			Source     *string `db:"source"`
			N          int64   `db:"n"`
			Successful int64   `db:"successful"`
			Linked     int64   `db:"linked"`
		}
		if err := tx.SelectContext(ctx, &refs, referrals, tenant, start, f.CampaignID, f.Code); err != nil {
			return fmt.Errorf("funnel referrals: %w", err)
		}
		bySource := map[string]*referral.FunnelSource{}
		entry := func(src *string) *referral.FunnelSource {
			k := "\x00none"
			if src != nil {
				k = *src
			}
			if e, ok := bySource[k]; ok {
				return e
			}
			e := &referral.FunnelSource{Source: src}
			bySource[k] = e
			return e
		}
		var linked int64
		for _, r := range imps {
			entry(r.Source).Impressions = r.N
		}
		for _, r := range refs {
			e := entry(r.Source)
			e.Referrals, e.Successful = r.N, r.Successful
			linked += r.Linked
		}
		sources := make([]referral.FunnelSource, 0, len(bySource))
		for _, e := range bySource {
			sources = append(sources, *e)
		}
		out = referral.FunnelOf(sources, linked)
		return nil
	})
	return out, err
}

// CodeImpressions counts every impression recorded of a live code of the tenant, from its
// counters. Errors: NOT_FOUND.
func (s *Store) CodeImpressions(ctx context.Context, tenant string, codeID uuid.UUID) (int64, error) {
	const q = `SELECT coalesce(sum(impressions), 0) FROM impression_counts WHERE tenant_id = $1 AND code_id = $2`
	var n int64
	err := s.readTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := codeByID(ctx, tx, tenant, codeID, false); err != nil {
			return err
		}
		if err := tx.GetContext(ctx, &n, q, tenant, codeID); err != nil {
			return fmt.Errorf("code impressions: %w", err)
		}
		return nil
	})
	return n, err
}

// PruneImpressions deletes impressions recorded more than retention ago, at most batch rows per
// transaction so no deletion holds locks or bloats one transaction for long, until none is left;
// it returns how many it deleted. Each batch commits on its own: an interrupted prune has
// deleted whole batches and the next one continues. The counters keep counting the pruned
// impressions, and referrals keep their impression_id.
func (s *Store) PruneImpressions(ctx context.Context, retention time.Duration, batch int) (int64, error) {
	const q = `
		DELETE FROM impressions WHERE ctid = ANY (ARRAY(
		    SELECT ctid FROM impressions WHERE created_at < $1 LIMIT $2))`
	cutoff := s.now().Add(-retention)
	var total int64
	for {
		var n int64
		err := transact(ctx, s.db, txPrivate, func(tx *sqlx.Tx) error {
			res, err := tx.ExecContext(ctx, q, cutoff, batch)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return total, fmt.Errorf("prune impressions: %w", err)
		}
		total += n
		if n < int64(batch) {
			return total, nil
		}
	}
}

// UserImpressions counts, for each of users, the impressions of the tenant's live codes the user
// owns, from the counters of the UTC days overlapping period up to now (the Query Gateway's
// stats, §15). A user without impressions is absent from the answer.
func (s *Store) UserImpressions(ctx context.Context, tenant string, users []string, period referral.Period) (map[string]int64, error) {
	const q = `
		SELECT c.owner_user_id AS user_id, sum(ic.impressions) AS n
		FROM referral_codes c JOIN impression_counts ic ON ic.tenant_id = c.tenant_id AND ic.code_id = c.id
		WHERE c.tenant_id = $1 AND c.owner_user_id = ANY ($2) AND c.deleted_at IS NULL
		  AND ($3::timestamptz IS NULL OR ic.day >= $3)
		GROUP BY c.owner_user_id`
	var since *time.Time
	if start := period.Start(s.now()); start != nil {
		b := referral.ImpressionBucketStart(*start)
		since = &b
	}
	out := make(map[string]int64, len(users))
	err := s.readTx(ctx, func(tx *sqlx.Tx) error {
		var rows []struct {
			UserID string `db:"user_id"`
			N      int64  `db:"n"`
		}
		if err := tx.SelectContext(ctx, &rows, q, tenant, pq.Array(users), since); err != nil {
			return fmt.Errorf("user impressions: %w", err)
		}
		for _, r := range rows {
			out[r.UserID] = r.N
		}
		return nil
	})
	return out, err
}
