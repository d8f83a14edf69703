package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/outbox"
	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// readFeed follows next_cursor from after until it has seen want events or the deadline
// passes, and returns the events in the order read.
func readFeed(t *testing.T, s *postgres.Store, tenant string, after *outbox.Cursor, types []string, want int) ([]outbox.Event, outbox.Cursor) {
	t.Helper()
	ctx := context.Background()
	var got []outbox.Event
	var cur outbox.Cursor
	if after != nil {
		cur = *after
	}
	for deadline := time.Now().Add(20 * time.Second); len(got) < want; {
		page, err := s.Feed(ctx, tenant, outbox.FeedFilter{After: &cur, Types: types, Limit: 7})
		if err != nil {
			t.Fatalf("Feed: %v", err)
		}
		got = append(got, page.Events...)
		cur = page.Next
		if len(page.Events) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("read %d events of %d before the deadline", len(got), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return got, cur
}

// TestFeedConcurrentWritersCommitOutOfOrder: writers whose transactions stay open for random
// times commit out of the order they published in; a reader following next_cursor meanwhile
// sees every event exactly once, each transaction's events together and in order.
func TestFeedConcurrentWritersCommitOutOfOrder(t *testing.T) {
	s := postgres.NewStore(pgtest.DB(t))
	tenant := pgtest.Tenant(t)
	ctx := context.Background()
	const writers, txs = 12, 15
	var (
		mu        sync.Mutex
		published = map[string]int{} // data "w-i-k" → count of commits (1)
	)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range txs {
				n := 1 + rand.IntN(3)
				msgs := make([]outbox.Message, n)
				names := make([]string, n)
				for k := range n {
					names[k] = fmt.Sprintf("%02d-%02d-%d", w, i, k)
					msgs[k] = outbox.Message{Type: outbox.RewardCreated, Data: map[string]string{"name": names[k]}}
				}
				err := s.TxWrite(ctx, func(tx *sqlx.Tx) error {
					if err := postgres.Publish(ctx, tx, tenant, time.Now(), msgs...); err != nil {
						return err
					}
					time.Sleep(time.Duration(rand.IntN(15)) * time.Millisecond)
					return nil
				})
				if err != nil {
					t.Errorf("publish: %v", err)
					return
				}
				mu.Lock()
				for _, nm := range names {
					published[nm]++
				}
				mu.Unlock()
			}
		}()
	}
	// One transaction rolls back: its events are never seen.
	rollback := errors.New("rolled back")
	err := s.TxWrite(ctx, func(tx *sqlx.Tx) error {
		if err := postgres.Publish(ctx, tx, tenant, time.Now(), outbox.Message{Type: outbox.RewardCreated,
			Data: map[string]string{"name": "rolled-back"}}); err != nil {
			return err
		}
		return rollback
	})
	if !errors.Is(err, rollback) {
		t.Fatalf("rollback: %v", err)
	}

	// The reader runs while the writers write.
	seen := map[string]int{}
	var order []string
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var cur outbox.Cursor
	finished := false
	for deadline := time.Now().Add(30 * time.Second); ; {
		page, err := s.Feed(ctx, tenant, outbox.FeedFilter{After: &cur, Limit: 5})
		if err != nil {
			t.Fatalf("Feed: %v", err)
		}
		for _, e := range page.Events {
			var d map[string]string
			if err := json.Unmarshal(e.Data, &d); err != nil {
				t.Fatal(err)
			}
			seen[d["name"]]++
			order = append(order, d["name"])
		}
		cur = page.Next
		if finished {
			mu.Lock()
			all := len(seen) >= len(published)
			mu.Unlock()
			if all && len(page.Events) == 0 {
				break
			}
		}
		select {
		case <-done:
			finished = true
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("saw %d of %d events before the deadline", len(seen), len(published))
		}
		if len(page.Events) == 0 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	if len(published) == 0 {
		t.Fatal("nothing was published")
	}
	for name, n := range seen {
		if n != 1 {
			t.Errorf("event %s seen %d times", name, n)
		}
		if published[name] != 1 {
			t.Errorf("event %s seen but never committed", name)
		}
	}
	for name := range published {
		if seen[name] == 0 {
			t.Errorf("event %s committed but never seen", name)
		}
	}
	// A transaction's events are contiguous and in publishing order: the k-th event of a
	// transaction follows its (k-1)-th directly.
	for i, name := range order {
		if k := name[len(name)-1]; k != '0' && (i == 0 || order[i-1] != name[:len(name)-1]+string(k-1)) {
			t.Errorf("event %s does not follow its transaction's previous event (%d)", name, i)
		}
	}
}

// TestFacts: the storage writes publish their facts in their own transaction, with the data the
// API shows; a refused write publishes nothing.
func TestFacts(t *testing.T) {
	s := postgres.NewStore(pgtest.DB(t))
	tenant := pgtest.Tenant(t)
	ctx := context.Background()
	aff, err := s.CreateAffiliate(ctx, referral.Affiliate{TenantID: tenant, UserID: "alice", Status: referral.AffiliateActive})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateAffiliate(ctx, referral.Affiliate{TenantID: tenant, UserID: "alice", Status: referral.AffiliateActive}); referral.ErrorCode(err) != referral.EAffiliateExists {
		t.Fatalf("second affiliate: %v", err)
	}
	ref, _, err := s.ApplyCode(ctx, tenant, "bob", aff.AffiliateCode, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ApplyCode(ctx, tenant, "bob", aff.AffiliateCode, nil, nil); referral.ErrorCode(err) != referral.EAlreadyReferred {
		t.Fatalf("second apply: %v", err)
	}
	rejected, err := s.SetReferralStatus(ctx, tenant, ref.ID, referral.StatusRejected, nil)
	if err != nil {
		t.Fatal(err)
	}
	change := aff
	change.Status = referral.AffiliateSuspended
	updated, err := s.ReplaceAffiliate(ctx, change)
	if err != nil {
		t.Fatal(err)
	}
	same, err := s.ReplaceAffiliate(ctx, updated) // changes nothing: publishes nothing
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAffiliate(ctx, tenant, aff.ID); err != nil {
		t.Fatal(err)
	}
	events, _ := readFeed(t, s, tenant, nil, nil, 5)
	deleted := same
	deleted.UpdatedAt = events[len(events)-1].CreatedAt
	want := []struct {
		typ  string
		data any
	}{
		{outbox.AffiliateCreated, apishape.NewAffiliate(aff)},
		{outbox.ReferralCreated, apishape.NewAdminReferral(ref)},
		{outbox.ReferralStatusChanged, apishape.NewAdminReferral(rejected)},
		{outbox.AffiliateUpdated, apishape.NewAffiliate(updated)},
		{outbox.AffiliateDeleted, apishape.NewAffiliate(deleted)},
	}
	if len(events) != len(want) {
		t.Fatalf("got %d events, want %d", len(events), len(want))
	}
	for i, w := range want {
		e := events[i]
		b, _ := json.Marshal(w.data)
		if e.Type != w.typ || e.TenantID != tenant || string(e.Data) != string(b) {
			t.Errorf("event %d = %s %s\nwant %s %s", i, e.Type, e.Data, w.typ, b)
		}
	}
	// Nothing more arrives: the refused writes and the empty PUT published nothing.
	page, err := s.Feed(ctx, tenant, outbox.FeedFilter{Limit: 100})
	if err != nil || len(page.Events) != len(want) {
		t.Fatalf("feed from the start: %d events, %v", len(page.Events), err)
	}
}

// TestFeedHeadTypesAndExpiry: after=head sees only later commits; types filters, and a cursor
// past pruned events is answered as expired.
func TestFeedHeadTypesAndExpiry(t *testing.T) {
	s := postgres.NewStore(pgtest.DB(t))
	tenant := pgtest.Tenant(t)
	ctx := context.Background()
	pub := func(typ, name string) {
		t.Helper()
		err := s.TxWrite(ctx, func(tx *sqlx.Tx) error {
			return postgres.Publish(ctx, tx, tenant, time.Now(), outbox.Message{Type: typ, Data: map[string]string{"name": name}})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	pub(outbox.RewardCreated, "old")
	readFeed(t, s, tenant, nil, nil, 1) // wait until it is below the mark
	head, err := s.Feed(ctx, tenant, outbox.FeedFilter{Head: true, Limit: 10})
	if err != nil || len(head.Events) != 0 {
		t.Fatalf("head: %d events, %v", len(head.Events), err)
	}
	pub(outbox.CommissionCreated, "c1")
	pub(outbox.RewardCreated, "r1")
	pub(outbox.CommissionCreated, "c2")
	got, _ := readFeed(t, s, tenant, &head.Next, []string{outbox.CommissionCreated}, 2)
	if len(got) != 2 || string(got[0].Data) != `{"name":"c1"}` || string(got[1].Data) != `{"name":"c2"}` {
		t.Fatalf("commissions after head: %+v", got)
	}
	all, next := readFeed(t, s, tenant, &head.Next, nil, 3)
	if len(all) != 3 {
		t.Fatalf("after head: %d events", len(all))
	}
	// Prune everything: a cursor that has not read the pruned events has expired, the latest
	// one has not, and reading from the start still works.
	if _, err := s.PruneOutbox(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Feed(ctx, tenant, outbox.FeedFilter{After: &head.Next, Limit: 10}); referral.ErrorCode(err) != referral.EValidation {
		t.Fatalf("expired cursor after head: %v", err)
	}
	if p, err := s.Feed(ctx, tenant, outbox.FeedFilter{After: &next, Limit: 10}); err != nil || len(p.Events) != 0 {
		t.Fatalf("latest cursor after pruning: %+v, %v", p, err)
	}
	if p, err := s.Feed(ctx, tenant, outbox.FeedFilter{Limit: 10}); err != nil || len(p.Events) != 0 {
		t.Fatalf("from the start after pruning: %+v, %v", p, err)
	}
}

// TestWebhookWantsAgreesWithDomain: phoenix_webhook_wants (migration 00007) answers as
// outbox.Endpoint.Wants.
func TestWebhookWantsAgreesWithDomain(t *testing.T) {
	db := pgtest.DB(t)
	subs := [][]string{{}, {outbox.RewardCreated}, {outbox.RewardCreated, outbox.WebhookTest}, {outbox.AffiliateDeleted}}
	for _, sub := range subs {
		for _, typ := range append(outbox.Types, "unknown") {
			var got bool
			if err := db.Get(&got, `SELECT phoenix_webhook_wants($1::text[], $2)`, pq.StringArray(sub), typ); err != nil {
				t.Fatal(err)
			}
			if want := (outbox.Endpoint{EventTypes: sub}).Wants(typ); got != want {
				t.Errorf("phoenix_webhook_wants(%v, %q) = %v, Wants = %v", sub, typ, got, want)
			}
		}
	}
}

// TestFeedNotHeldByLongTransaction: an open writing transaction delays only its own events; what
// commits meanwhile is read at once, and the open one's events follow after its commit.
func TestFeedNotHeldByLongTransaction(t *testing.T) {
	s := postgres.NewStore(pgtest.DB(t))
	tenant := pgtest.Tenant(t)
	ctx := context.Background()
	pub := func(tx *sqlx.Tx, name string) error {
		return postgres.Publish(ctx, tx, tenant, time.Now(), outbox.Message{Type: outbox.RewardCreated, Data: map[string]string{"name": name}})
	}
	release := make(chan struct{})
	held := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		held <- s.TxWrite(ctx, func(tx *sqlx.Tx) error {
			if err := pub(tx, "late"); err != nil {
				return err
			}
			close(started)
			<-release
			return nil
		})
	}()
	<-started
	if err := s.TxWrite(ctx, func(tx *sqlx.Tx) error { return pub(tx, "early") }); err != nil {
		t.Fatal(err)
	}
	got, cur := readFeed(t, s, tenant, nil, nil, 1)
	if string(got[0].Data) != `{"name":"early"}` {
		t.Fatalf("first event %s", got[0].Data)
	}
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	got, _ = readFeed(t, s, tenant, &cur, nil, 1)
	if len(got) != 1 || string(got[0].Data) != `{"name":"late"}` {
		t.Fatalf("after the late commit: %+v", got)
	}
}

// TestEventFacts: an event that converts a referral publishes one reward.created and
// commission.created per ledger row, referral.converted, and affiliate.tier_changed when the conversion moves the
// referrer's effective tier (with the tier it had before).
func TestEventFacts(t *testing.T) {
	s := postgres.NewStore(pgtest.DB(t))
	tenant := pgtest.Tenant(t)
	ctx := context.Background()
	tier, err := s.CreateTier(ctx, referral.Tier{TenantID: tenant, Name: "bronze", MinReferrals: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateCampaign(ctx, referral.Campaign{TenantID: tenant, Name: "welcome", QualifyingEvent: "deposit.completed",
		ReferrerRewards: []referral.Wallet{{CurrencyID: "points", Amount: 100}},
		RefereeRewards:  []referral.Wallet{{CurrencyID: "points", Amount: 50}}, Active: true}); err != nil {
		t.Fatal(err)
	}
	rate, _ := referral.ParseRate("0.05")
	if _, err := s.CreateCommissionRule(ctx, referral.CommissionRule{TenantID: tenant, Name: "deposits", EventType: "deposit.completed",
		CommissionField: "amount", CustomRate: &rate, CurrencyID: "EUR", Active: true}); err != nil {
		t.Fatal(err)
	}
	aff, err := s.CreateAffiliate(ctx, referral.Affiliate{TenantID: tenant, UserID: "alice", Status: referral.AffiliateActive})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ApplyCode(ctx, tenant, "bob", aff.AffiliateCode, nil, nil); err != nil {
		t.Fatal(err)
	}
	out, err := s.ProcessEvent(ctx, referral.Event{TenantID: tenant, EventID: "dep_1", Type: "deposit.completed",
		UserID: "bob", OccurredAt: time.Now(), Payload: json.RawMessage(`{"amount": 5000}`)})
	if err != nil || len(out.Rewards) != 2 || len(out.Commissions) != 1 {
		t.Fatalf("event: %+v, %v", out, err)
	}
	// A duplicate publishes nothing.
	if _, err := s.ProcessEvent(ctx, referral.Event{TenantID: tenant, EventID: "dep_1", Type: "deposit.completed",
		UserID: "bob", OccurredAt: time.Now(), Payload: json.RawMessage(`{"amount": 5000}`)}); err != nil {
		t.Fatal(err)
	}
	events, _ := readFeed(t, s, tenant, nil, nil, 7)
	var types []string
	for _, e := range events {
		types = append(types, e.Type)
	}
	want := []string{outbox.AffiliateCreated, outbox.ReferralCreated, outbox.RewardCreated, outbox.RewardCreated,
		outbox.CommissionCreated, outbox.ReferralConverted, outbox.AffiliateTierChanged}
	if fmt.Sprint(types) != fmt.Sprint(want) {
		t.Fatalf("types = %v, want %v", types, want)
	}
	var change apishape.AffiliateTierChange
	if err := json.Unmarshal(events[6].Data, &change); err != nil {
		t.Fatal(err)
	}
	if change.ID != aff.ID || change.PreviousTierID != nil || change.TierID == nil || *change.TierID != tier.ID || change.ConvertedReferrals != 1 {
		t.Fatalf("tier change = %+v", change)
	}
	var conv apishape.Referral
	if err := json.Unmarshal(events[5].Data, &conv); err != nil || conv.Status != referral.StatusConverted {
		t.Fatalf("converted = %+v, %v", conv, err)
	}
	page, err := s.Feed(ctx, tenant, outbox.FeedFilter{Limit: 100})
	if err != nil || len(page.Events) != 7 {
		t.Fatalf("the duplicate published: %d events, %v", len(page.Events), err)
	}
}

// TestMilestoneReachedPublished: a conversion that reaches a milestone publishes
// milestone.reached with the reward rows it paid.
func TestMilestoneReachedPublished(t *testing.T) {
	s, clock, tenant := refStore(t)
	ctx := context.Background()
	camp, err := s.CreateCampaign(ctx, referral.Campaign{TenantID: tenant, Name: "Refer friends",
		QualifyingEvent: "deposit.completed", Active: true,
		Milestones: []referral.Milestone{{SuccessfulReferrals: 1,
			Rewards: []referral.Wallet{{CurrencyID: "points", Amount: 10}, {CurrencyID: "gems", Amount: 1}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreatePlayerCode(ctx, tenant, "alice", "ALICE1", nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ApplyCode(ctx, tenant, "bob", "ALICE1", nil, nil); err != nil {
		t.Fatal(err)
	}
	clock.t = clock.t.Add(time.Minute)
	out, err := s.ProcessEvent(ctx, deposit(tenant, "dep1", "bob", clock.t))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range out.Rewards {
		if r.Role == referral.RoleMilestone {
			ids = append(ids, r.ID.String())
		}
	}
	got, _ := readFeed(t, s, tenant, nil, []string{outbox.MilestoneReached}, 1)
	want, _ := json.Marshal(map[string]any{"campaign_id": camp.ID, "user_id": "alice", "successful_referrals": 1, "reward_ids": ids})
	var g, w map[string]any
	json.Unmarshal(got[0].Data, &g)
	json.Unmarshal(want, &w)
	if len(ids) != 2 || fmt.Sprint(g) != fmt.Sprint(w) {
		t.Fatalf("milestone.reached = %s, want %s", got[0].Data, want)
	}
}
