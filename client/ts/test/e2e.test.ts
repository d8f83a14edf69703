// End-to-end test of the TypeScript client against running gateways (scripts/sdk.sh e2e starts
// a stack and sets the environment): the seed flow, and the typed error answers.
//
//   PHOENIX_ADMIN_URL, PHOENIX_QUERY_URL     the gateways
//   PHOENIX_ADMIN_TOKEN                      a tenant_admin token of a fresh tenant
//   PHOENIX_SERVICE_TOKEN                    a service token of that tenant
//   PHOENIX_ALICE_TOKEN, PHOENIX_BOB_TOKEN   two player tokens of that tenant
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { createAdminClient, createQueryClient, ErrorCode, PhoenixError, unwrap, type AdminSchemas } from "../src/index.js";

const env = {
  adminUrl: process.env.PHOENIX_ADMIN_URL,
  queryUrl: process.env.PHOENIX_QUERY_URL,
  admin: process.env.PHOENIX_ADMIN_TOKEN,
  service: process.env.PHOENIX_SERVICE_TOKEN,
  alice: process.env.PHOENIX_ALICE_TOKEN,
  bob: process.env.PHOENIX_BOB_TOKEN,
};
const missing = Object.entries(env).filter(([, v]) => !v).map(([k]) => k);

// subject returns a token's `sub` (the user id the gateways see).
function subject(token: string): string {
  const payload = token.split(".")[1] ?? "";
  return JSON.parse(Buffer.from(payload, "base64url").toString()).sub;
}

async function eventually(fn: () => Promise<void>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

describe("TypeScript client end to end", { skip: missing.length ? `environment not set: ${missing.join(", ")}` : false }, () => {
  const adminUrl = env.adminUrl!;
  const backOffice = createAdminClient({ baseUrl: adminUrl, token: env.admin! });
  const platform = createAdminClient({ baseUrl: adminUrl, token: env.service! });
  const alice = createAdminClient({ baseUrl: adminUrl, token: env.alice! });
  const bob = createAdminClient({ baseUrl: adminUrl, token: env.bob! });
  const aliceReads = createQueryClient({ baseUrl: env.queryUrl!, token: env.alice! });
  const aliceID = subject(env.alice!);
  const bobID = subject(env.bob!);
  const suffix = Math.random().toString(36).slice(2, 8).toUpperCase();

  it("walks the seed flow and reads the typed errors", async () => {
    const wallet = (amount: number): AdminSchemas["RewardsInput"] => ({ wallet: [{ currency_id: "points", amount }] });
    const campaign = await unwrap(backOffice.POST("/v1/referral/campaigns", {
      body: {
        name: "Welcome Bonus",
        qualifying_event: "deposit.completed",
        qualifying_filter: { amount: { gte: 1000 } },
        referrer_rewards: wallet(100),
        referee_rewards: wallet(50),
      },
    }));
    assert.equal(campaign.name, "Welcome Bonus");
    assert.equal(campaign.active, true);

    // Both shapes of POST /v1/referral/codes.
    const code = await unwrap(alice.POST("/v1/referral/codes", { body: { code: `alice-${suffix}`, usage_limit: 10 } }));
    assert.equal(code.code, `ALICE-${suffix}`);
    assert.equal(code.owner_user_id, aliceID);
    const promo = await unwrap(backOffice.POST("/v1/referral/codes", {
      body: { code: `SPRING-${suffix}`, campaign_id: campaign.id, owner_user_id: null },
    }));
    assert.equal(promo.owner_user_id, null);
    assert.equal(promo.campaign_id, campaign.id);

    const referral = await unwrap(bob.POST("/v1/referral/apply-code", {
      body: { code: code.code.toLowerCase(), metadata: { source: "poster_qr_code" } },
    }));
    assert.equal(referral.referrer_id, aliceID);
    assert.equal(referral.referee_id, bobID);
    assert.equal(referral.status, "pending");

    // Error case: the typed error branch, and unwrap's PhoenixError.
    const again = await bob.POST("/v1/referral/apply-code", { body: { code: promo.code } });
    assert.equal(again.response.status, 409);
    assert.equal(again.error?.error.code, "ALREADY_REFERRED");
    const thrown = await unwrap(bob.POST("/v1/referral/apply-code", { body: { code: promo.code } })).catch((e: unknown) => e);
    assert.ok(thrown instanceof PhoenixError);
    assert.equal(thrown.code, ErrorCode.AlreadyReferred);
    assert.ok(thrown.requestId, "the error names its request");

    const deposit: AdminSchemas["EventInput"] = {
      event_id: `dep_${bobID}_${suffix}`, type: "deposit.completed", user_id: bobID,
      payload: { amount: 5000, currency: "EUR" },
    };
    const outcome = await unwrap(platform.POST("/v1/events", { body: deposit }));
    assert.equal(outcome.status, "processed");
    assert.equal(outcome.rewards.length, 2);
    const batch = await unwrap(platform.POST("/v1/events/batch", {
      body: { events: [deposit, { event_id: `login_${suffix}`, type: "login", user_id: bobID }] },
    }));
    assert.equal(batch.results.length, 2);
    assert.equal(batch.results[0]?.status, "duplicate");

    const rewards = await unwrap(backOffice.GET("/v1/referral/rewards", { params: { query: { event_id: deposit.event_id } } }));
    assert.deepEqual(
      rewards.items.map((r) => `${r.user_id}/${r.role}/${r.amount}`).sort(),
      [`${aliceID}/referrer/100`, `${bobID}/referee/50`].sort(),
    );

    // The referrer's stats on the Query Gateway, once the write is projected.
    await eventually(async () => {
      const stats = await unwrap(aliceReads.GET("/v1/referral/stats", { params: { query: { period: "all" } } }));
      assert.equal(stats.successful_referrals, 1);
      assert.deepEqual(stats.rewards, [{ currency_id: "points", amount: 100 }]);
    });

    // Error case on the Query Gateway: Alice is not an affiliate.
    const me = await aliceReads.GET("/v1/affiliate/me");
    assert.equal(me.response.status, 404);
    assert.equal(me.error?.error.code, "NOT_AN_AFFILIATE");
  });
});
