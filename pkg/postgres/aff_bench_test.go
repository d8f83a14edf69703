package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// Shape of the benchmark hierarchy: affBenchTrees trees of affBenchTreeSize nodes; node i of a
// tree hangs under node (i-1)*5/11 (about 2.2 children per node), so paths are up to 12 nodes
// long (depth 0–11) and every tree root heads a 10,000-node subtree.
const (
	affBenchTrees    = 10
	affBenchTreeSize = 10_000
	affBenchMaxDepth = 11
)

func affBenchParent(i int) int { return (i - 1) * 5 / 11 }

// affBenchTree is the seeded hierarchy as the benchmark knows it.
type affBenchTree struct {
	store   *postgres.Store
	db      *sqlx.DB
	tenant  string
	ids     [affBenchTrees][]uuid.UUID
	depth   []int // by index within a tree
	byDepth [affBenchMaxDepth + 1][]int
	size    []int // subtree size by index within a tree
}

// affBenchSeed fills a fresh database with 100,000 affiliates in bulk (multi-row INSERT … SELECT
// FROM unnest, 10,000 rows a statement) and their referral codes.
func affBenchSeed(b *testing.B) *affBenchTree {
	b.Helper()
	ctx := context.Background()
	db, err := postgres.Open(ctx, pgtest.NewDatabase(b), "aff-bench", 8)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	tr := &affBenchTree{store: postgres.NewStore(db), db: db, tenant: "bench-hierarchy",
		depth: make([]int, affBenchTreeSize), size: make([]int, affBenchTreeSize)}
	for i := 1; i < affBenchTreeSize; i++ {
		tr.depth[i] = tr.depth[affBenchParent(i)] + 1
	}
	for i := affBenchTreeSize - 1; i >= 0; i-- {
		tr.size[i]++
		if i > 0 {
			tr.size[affBenchParent(i)] += tr.size[i]
		}
	}
	for i, d := range tr.depth {
		tr.byDepth[d] = append(tr.byDepth[d], i)
	}
	const codes = `
		INSERT INTO referral_codes (id, tenant_id, code, owner_user_id, active, source, generated, created_at, updated_at)
		SELECT c.id, $1, c.code, c.owner, true, 'affiliate', false, $5, $5
		FROM unnest($2::uuid[], $3::text[], $4::text[]) AS c(id, code, owner)`
	const affiliates = `
		INSERT INTO affiliates (id, tenant_id, user_id, affiliate_code, code_id, status,
		    parent_affiliate_id, ancestors, created_at, updated_at)
		SELECT a.id, $1, a.user_id, a.code, a.code_id, 'active', NULLIF(a.parent, '')::uuid,
		    a.ancestors::uuid[], $8::timestamptz + a.n * interval '1 microsecond', $8::timestamptz + a.n * interval '1 microsecond'
		FROM unnest($2::uuid[], $3::text[], $4::text[], $5::uuid[], $6::text[], $7::text[])
		    WITH ORDINALITY AS a(id, user_id, code, code_id, parent, ancestors, n)`
	start := time.Now()
	// The seed is not what is measured: on one connection of this private database, replica
	// mode skips the change-log triggers (and FK checks) for the bulk load.
	conn, err := db.Connx(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SET session_replication_role = replica`); err != nil {
		b.Fatal(err)
	}
	base := time.Now().UTC().Add(-time.Hour)
	for t := range affBenchTrees {
		ids := make([]uuid.UUID, affBenchTreeSize)
		for i := range ids {
			ids[i] = uuid.New()
		}
		tr.ids[t] = ids
		var (
			idArr, codeIDs                     = make(pq.StringArray, 0, len(ids)), make(pq.StringArray, 0, len(ids))
			users, codeArr, parents, ancestors pq.StringArray
			paths                              = make([][]string, len(ids))
		)
		for i, id := range ids {
			idArr = append(idArr, id.String())
			codeIDs = append(codeIDs, uuid.NewString())
			users = append(users, fmt.Sprintf("bench_%d_%d", t, i))
			codeArr = append(codeArr, fmt.Sprintf("B%02d%05d", t, i))
			if i == 0 {
				parents = append(parents, "")
				paths[i] = nil
			} else {
				p := affBenchParent(i)
				parents = append(parents, ids[p].String())
				paths[i] = append(slices.Clone(paths[p]), ids[p].String())
			}
			ancestors = append(ancestors, "{"+strings.Join(paths[i], ",")+"}")
		}
		if _, err := conn.ExecContext(ctx, codes, tr.tenant, codeIDs, codeArr, users, base); err != nil {
			b.Fatalf("seed codes: %v", err)
		}
		if _, err := conn.ExecContext(ctx, affiliates, tr.tenant, idArr, users, codeArr, codeIDs, parents, ancestors,
			base.Add(time.Duration(t)*time.Second)); err != nil {
			b.Fatalf("seed affiliates: %v", err)
		}
	}
	if _, err := conn.ExecContext(ctx, `RESET session_replication_role`); err != nil {
		b.Fatal(err)
	}
	// What autovacuum does after a bulk load: statistics, and the GIN pending list merged.
	for _, q := range []string{`VACUUM ANALYZE affiliates`, `VACUUM ANALYZE referral_codes`, `ANALYZE referrals`} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("seeded %d affiliates in %v", affBenchTrees*affBenchTreeSize, time.Since(start).Round(time.Millisecond))
	return tr
}

// affPercentile returns the p-th percentile (0–100) of sorted durations, in milliseconds.
func affPercentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return float64(sorted[i]) / float64(time.Millisecond)
}

func affReport(b *testing.B, name string, samples []time.Duration) {
	slices.Sort(samples)
	b.ReportMetric(affPercentile(samples, 50), name+"_p50_ms")
	b.ReportMetric(affPercentile(samples, 99), name+"_p99_ms")
	b.ReportMetric(float64(samples[len(samples)-1])/float64(time.Millisecond), name+"_max_ms")
}

// BenchmarkAffHierarchy measures the hierarchy on 100,000 affiliates (SPEC §9): downline pages,
// moving a 10,000-node subtree, and the cycle check on a small and the large tree. Run with
// -benchtime=1x: each sub-benchmark takes a fixed number of samples per iteration.
func BenchmarkAffHierarchy(b *testing.B) {
	if testing.Short() {
		b.Skip("seeds 100,000 affiliates")
	}
	tr := affBenchSeed(b)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))

	// A node picked either uniformly over every affiliate ("node": most are leaves or near them)
	// or at a random depth ("depth": uniform over depths 0–11, then over that depth's nodes, so a
	// twelfth of the samples are roots of 10,000-node trees), and a random page of its downline.
	pick := func(mode string, depth int) (uuid.UUID, int) {
		var i int
		if mode == "node" {
			i = rng.IntN(affBenchTreeSize)
		} else {
			nodes := tr.byDepth[rng.IntN(affBenchMaxDepth+1)]
			i = nodes[rng.IntN(len(nodes))]
		}
		total := tr.size[i] - 1
		if depth == 1 {
			total = 0
			for c := 11*i/5 + 1; c <= 11*i/5+3 && c < affBenchTreeSize; c++ {
				if affBenchParent(c) == i {
					total++
				}
			}
		}
		offset := 0
		if pages := total / 50; pages > 0 && rng.IntN(2) == 0 {
			offset = rng.IntN(min(pages, 20)+1) * 50
		}
		return tr.ids[rng.IntN(affBenchTrees)][i], offset
	}
	// Each round reads one random affiliate by id (the baseline: a point lookup in its own
	// transaction) and one downline page at depth 50 and at depth 1, so the three sample sets
	// see the same machine noise.
	for _, mode := range []string{"node", "depth"} {
		b.Run("downline_by_"+mode, func(b *testing.B) {
			var base, deep, direct []time.Duration
			for range b.N {
				for range 500 {
					id := tr.ids[rng.IntN(affBenchTrees)][rng.IntN(affBenchTreeSize)]
					t0 := time.Now()
					if _, err := tr.store.GetAffiliate(ctx, tr.tenant, id); err != nil {
						b.Fatal(err)
					}
					base = append(base, time.Since(t0))
					for _, depth := range []int{50, 1} {
						id, offset := pick(mode, depth)
						t0 := time.Now()
						if _, _, err := tr.store.Downline(ctx, tr.tenant, id, referral.DownlineFilter{Depth: depth, Limit: 50, Offset: offset}); err != nil {
							b.Fatal(err)
						}
						if depth == 50 {
							deep = append(deep, time.Since(t0))
						} else {
							direct = append(direct, time.Since(t0))
						}
					}
				}
			}
			affReport(b, "get", base)
			affReport(b, "depth50", deep)
			affReport(b, "depth1", direct)
		})
	}
	b.Run("downline_root_depth50", func(b *testing.B) {
		// The worst case: the first page under a root of a 10,000-node tree, with a baseline
		// read in between.
		var samples, base []time.Duration
		for range b.N {
			for n := range 50 {
				t0 := time.Now()
				if _, err := tr.store.GetAffiliate(ctx, tr.tenant, tr.ids[n%affBenchTrees][n]); err != nil {
					b.Fatal(err)
				}
				base = append(base, time.Since(t0))
				t0 = time.Now()
				if _, total, err := tr.store.Downline(ctx, tr.tenant, tr.ids[n%affBenchTrees][0], referral.DownlineFilter{Depth: 50, Limit: 50}); err != nil || total != affBenchTreeSize-1 {
					b.Fatalf("root downline: total %d, %v", total, err)
				}
				samples = append(samples, time.Since(t0))
			}
		}
		affReport(b, "get", base)
		affReport(b, "page", samples)
	})

	// The cycle check reads only the new parent's path: the same cost on a 3-node tree as under
	// the deepest leaf of a 10,000-node tree.
	small := tr.tenant + "-small"
	var chain []referral.Affiliate
	for i := range 3 {
		a := affCreate(b, tr.store, small, fmt.Sprintf("small_%d", i))
		if i > 0 {
			p := chain[i-1].ID
			if _, err := tr.store.SetUpline(ctx, small, a.ID, &p); err != nil {
				b.Fatal(err)
			}
		}
		chain = append(chain, a)
	}
	deepest := tr.byDepth[affBenchMaxDepth][0]
	// Samples alternate between the two trees so both see the same machine noise.
	b.Run("cycle_check", func(b *testing.B) {
		cases := []struct {
			tenant       string
			node, parent uuid.UUID
			samples      []time.Duration
		}{
			{tenant: small, node: chain[0].ID, parent: chain[2].ID},
			{tenant: tr.tenant, node: tr.ids[0][0], parent: tr.ids[0][deepest]},
		}
		for range b.N {
			for n := range 400 {
				c := &cases[n%2]
				t0 := time.Now()
				_, err := tr.store.SetUpline(ctx, c.tenant, c.node, &c.parent)
				c.samples = append(c.samples, time.Since(t0))
				if referral.ErrorCode(err) != referral.EHierarchyCycle {
					b.Fatalf("want HIERARCHY_CYCLE, got %v", err)
				}
			}
		}
		affReport(b, "small_tree", cases[0].samples)
		affReport(b, "large_tree", cases[1].samples)
	})

	// Move tree 0 (a 10,000-node subtree) back and forth between a depth-3 node of tree 1 and a
	// depth-5 node of tree 2: each move rewrites 10,000 paths. A leaf of tree 3 moved the same
	// way in between is the baseline.
	b.Run("move_10k_subtree", func(b *testing.B) {
		targets := []uuid.UUID{tr.ids[1][tr.byDepth[3][0]], tr.ids[2][tr.byDepth[5][0]]}
		leaf := tr.ids[3][affBenchTreeSize-1]
		var samples, base []time.Duration
		for range b.N {
			for n := range 6 {
				t0 := time.Now()
				if _, err := tr.store.SetUpline(ctx, tr.tenant, leaf, &targets[n%2]); err != nil {
					b.Fatal(err)
				}
				base = append(base, time.Since(t0))
				t0 = time.Now()
				moved, err := tr.store.SetUpline(ctx, tr.tenant, tr.ids[0][0], &targets[n%2])
				if err != nil {
					b.Fatal(err)
				}
				samples = append(samples, time.Since(t0))
				if *moved.ParentAffiliateID != targets[n%2] {
					b.Fatalf("moved under %v", moved.ParentAffiliateID)
				}
			}
		}
		affReport(b, "leaf_move", base)
		affReport(b, "move", samples)
		affConsistent(b, tr.db, tr.tenant)
	})
}
