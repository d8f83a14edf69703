// Unit tests of the hand-written layer against a local fake gateway: tokens, Idempotency-Keys,
// retries and the error type.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";

import { createAdminClient, createQueryClient, ErrorCode, PhoenixError, retryAfterMs, unwrap } from "../src/index.js";

interface Seen {
  method: string;
  path: string;
  auth: string | undefined;
  key: string | undefined;
  body: string;
}

type Answer = { status: number; headers?: Record<string, string>; body?: string };

// A fake gateway answering from a script (the last answer repeats) and recording requests.
let script: Answer[] = [];
let seen: Seen[] = [];
let baseUrl = "";
const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  let body = "";
  req.on("data", (c: Buffer) => (body += c.toString()));
  req.on("end", () => {
    seen.push({
      method: req.method ?? "",
      path: req.url ?? "",
      auth: req.headers.authorization,
      key: req.headers["idempotency-key"] as string | undefined,
      body,
    });
    const a = script[Math.min(seen.length - 1, script.length - 1)]!;
    res.writeHead(a.status, { ...(a.body ? { "Content-Type": "application/json" } : {}), ...a.headers });
    res.end(a.body ?? "");
  });
});

before(async () => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => server.close());

function reset(...answers: Answer[]): number[] {
  script = answers;
  seen = [];
  return [];
}

const tier = JSON.stringify({
  id: "6f1c2b9e-8a4d-4c1e-9b7a-2d3e4f5a6b7c", tenant_id: "t1", name: "Gold", commission_rate: 0.15,
  min_referrals: 0, min_referee_revenue: 0, priority: 1,
  created_at: "2026-03-01T12:00:00Z", updated_at: "2026-03-01T12:00:00Z",
});
const envelope = (code: string, message: string, fields?: Record<string, string>) => JSON.stringify({ error: { code, message, fields } });

describe("phoenixFetch", () => {
  it("signs every request and keys writes", async () => {
    reset({ status: 200, body: tier });
    let asked = 0;
    const admin = createAdminClient({ baseUrl, token: () => `tok-${++asked}` });
    await unwrap(admin.POST("/v1/affiliate/tiers", { body: { name: "Gold", commission_rate: 0.15 } }));
    await unwrap(admin.POST("/v1/affiliate/tiers", {
      params: { header: { "Idempotency-Key": "order-42" } },
      body: { name: "Gold", commission_rate: 0.15 },
    }));
    const tierId = "6f1c2b9e-8a4d-4c1e-9b7a-2d3e4f5a6b7c";
    const got = await unwrap(admin.GET("/v1/affiliate/tiers/{tier_id}", { params: { path: { tier_id: tierId } } }));
    assert.equal(got.name, "Gold");
    // A PUT replaces and an event is deduplicated by its event_id: neither needs a key.
    await unwrap(admin.PUT("/v1/affiliate/tiers/{tier_id}", { params: { path: { tier_id: tierId } }, body: { name: "Gold", commission_rate: 0.2 } }));
    await unwrap(admin.POST("/v1/events", { body: { event_id: "e1", type: "t", user_id: "u" } }));
    assert.deepEqual(seen.map((s) => s.auth), ["Bearer tok-1", "Bearer tok-2", "Bearer tok-3", "Bearer tok-4", "Bearer tok-5"]);
    assert.match(seen[0]!.key ?? "", /^[0-9a-f-]{36}$/);
    assert.equal(seen[1]!.key, "order-42");
    assert.deepEqual(seen.slice(2).map((s) => s.key), [undefined, undefined, undefined]);
  });

  it("repeats an event after a 503 without a key", async () => {
    reset({ status: 503, body: envelope("UNAVAILABLE", "try again") }, { status: 200, body: "{}" });
    const admin = createAdminClient({ baseUrl, token: "tok", sleep: async () => {} });
    const { response } = await admin.POST("/v1/events/batch", { body: { events: [{ event_id: "e1", type: "t", user_id: "u" }] } });
    assert.equal(response.status, 200);
    assert.equal(seen.length, 2);
    assert.equal(seen[0]!.key, undefined);
    assert.equal(seen[1]!.body, seen[0]!.body);
  });

  it("retries a 429 after its Retry-After with the same key and body", async () => {
    const limited: Answer = { status: 429, headers: { "Retry-After": "2" }, body: envelope("RATE_LIMITED", "too many failed attempts") };
    reset(limited, limited, { status: 200, body: "{}" });
    const waits: number[] = [];
    const admin = createAdminClient({ baseUrl, token: "tok", sleep: async (ms) => void waits.push(ms) });
    const { response } = await admin.POST("/v1/referral/apply-code", { body: { code: "ALICE" } });
    assert.equal(response.status, 200);
    assert.equal(seen.length, 3);
    assert.deepEqual(waits, [2000, 2000]);
    for (const s of seen) {
      assert.equal(s.key, seen[0]!.key);
      assert.equal(s.body, '{"code":"ALICE"}');
    }
  });

  it("retries a 503 with backoff, then hands over the last answer", async () => {
    reset({ status: 503, body: envelope("UNAVAILABLE", "try again") });
    const waits: number[] = [];
    const query = createQueryClient({ baseUrl, token: "tok", retries: 2, sleep: async (ms) => void waits.push(ms) });
    const { error, response } = await query.GET("/v1/referral/codes");
    assert.equal(response.status, 503);
    assert.equal(error?.error.code, "UNAVAILABLE");
    assert.equal(seen.length, 3);
    waits.forEach((w, i) => assert.ok(w > 0 && w <= 100 * 2 ** i + 1, `wait ${i} = ${w}`));
  });

  it("never repeats a POST without an Idempotency-Key after a 503", async () => {
    reset({ status: 503, body: envelope("UNAVAILABLE", "try again") });
    const admin = createAdminClient({ baseUrl, token: "tok", idempotencyKeys: false, sleep: async () => {} });
    const { response } = await admin.POST("/v1/affiliates", { body: { user_id: "partner_1" } });
    assert.equal(response.status, 503);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.key, undefined);
  });

  it("returns a Retry-After longer than the maximum wait at once", async () => {
    reset({ status: 429, headers: { "Retry-After": "600" }, body: envelope("RATE_LIMITED", "too many failed attempts") });
    const query = createQueryClient({ baseUrl, token: "tok", sleep: async () => assert.fail("slept") });
    const err = await unwrap(query.GET("/v1/referral/validate/{code}", { params: { path: { code: "X" } } })).catch((e: unknown) => e);
    assert.ok(err instanceof PhoenixError);
    assert.equal(err.code, ErrorCode.RateLimited);
    assert.equal(err.retryAfterMs, 600_000);
    assert.equal(seen.length, 1);
  });
});

describe("PhoenixError", () => {
  it("carries the envelope, the request id and the status", async () => {
    reset({ status: 400, headers: { "X-Request-Id": "req-1" }, body: envelope("VALIDATION_FAILED", "request validation failed", { name: "is required" }) });
    const admin = createAdminClient({ baseUrl, token: "tok" });
    const err = await unwrap(admin.POST("/v1/affiliate/tiers", { body: { name: "", commission_rate: 0 } })).catch((e: unknown) => e);
    assert.ok(err instanceof PhoenixError);
    assert.equal(err.status, 400);
    assert.equal(err.code, "VALIDATION_FAILED");
    assert.deepEqual(err.fields, { name: "is required" });
    assert.equal(err.requestId, "req-1");
    assert.equal(err.message, "phoenix: 400 VALIDATION_FAILED: request validation failed (request req-1)");
  });

  it("reads an answer that is not an envelope", async () => {
    reset({ status: 502, headers: { "Content-Type": "text/html" }, body: "<html>bad gateway</html>" });
    const admin = createAdminClient({ baseUrl, token: "tok" });
    const err = await unwrap(admin.GET("/v1/affiliate/tiers")).catch((e: unknown) => e);
    assert.ok(err instanceof PhoenixError);
    assert.equal(err.status, 502);
    assert.equal(err.code, undefined);
    assert.equal(err.detail, "Bad Gateway");
  });

  it("parses Retry-After", () => {
    const now = Date.parse("2026-03-01T12:00:00Z");
    assert.equal(retryAfterMs(null, now), 0);
    assert.equal(retryAfterMs("7", now), 7000);
    assert.equal(retryAfterMs("soon", now), 0);
    assert.equal(retryAfterMs("Sun, 01 Mar 2026 12:01:30 GMT", now), 90_000);
    assert.equal(retryAfterMs("Sun, 01 Mar 2026 11:00:00 GMT", now), 0);
  });
});
