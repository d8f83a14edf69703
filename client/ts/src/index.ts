/**
 * @phoenix-referral/client: typed clients of the Phoenix Referral Admin Gateway (write side)
 * and Query Gateway (player reads), for front ends and Node services.
 *
 * The request and response types are generated from the gateways' OpenAPI documents
 * (openapi-typescript); requests go through openapi-fetch, with bearer tokens, Idempotency-Keys
 * and retries added here. Every call answers `{ data, error, response }`, `error` being the
 * typed error envelope of the status that came; `unwrap` turns it into a thrown PhoenixError.
 *
 * ```ts
 * const admin = createAdminClient({ baseUrl: "http://localhost:8080", token: playerToken });
 * const { data, error } = await admin.POST("/v1/referral/apply-code", { body: { code: "ALICE2026" } });
 * if (error?.error.code === "ALREADY_REFERRED") { … }
 * ```
 */
import createClient, { type Client } from "openapi-fetch";

import type { components as AdminComponents, operations as AdminOperations, paths as AdminPaths } from "./generated/admin.js";
import type { components as QueryComponents, operations as QueryOperations, paths as QueryPaths } from "./generated/query.js";
import { PhoenixError } from "./errors.js";
import { phoenixFetch, type PhoenixOptions } from "./fetch.js";

export { ErrorCode, PhoenixError, retryAfterMs } from "./errors.js";
export { newIdempotencyKey, phoenixFetch, type PhoenixOptions } from "./fetch.js";
export type { AdminComponents, AdminOperations, AdminPaths, QueryComponents, QueryOperations, QueryPaths };

/** The Admin Gateway's schemas by name, e.g. `AdminSchemas["Campaign"]`. */
export type AdminSchemas = AdminComponents["schemas"];
/** The Query Gateway's schemas by name, e.g. `QuerySchemas["PlayerStats"]`. */
export type QuerySchemas = QueryComponents["schemas"];

/** A client of the Admin Gateway: one typed method per HTTP verb over its paths. */
export type AdminClient = Client<AdminPaths>;
/** A client of the Query Gateway: one typed method per HTTP verb over its paths. */
export type QueryClient = Client<QueryPaths>;

/** createAdminClient returns a client of the Admin Gateway at `options.baseUrl`. */
export function createAdminClient(options: PhoenixOptions): AdminClient {
  return createClient<AdminPaths>({ baseUrl: options.baseUrl, fetch: phoenixFetch(options) });
}

/** createQueryClient returns a client of the Query Gateway at `options.baseUrl`. */
export function createQueryClient(options: PhoenixOptions): QueryClient {
  return createClient<QueryPaths>({ baseUrl: options.baseUrl, fetch: phoenixFetch(options) });
}

/** The data of a successful client call (the branch of openapi-fetch's result that has it). */
export type DataOf<R> = R extends { data: infer D } ? D : never;

/**
 * unwrap awaits a client call and returns its data, or throws a PhoenixError for an error
 * answer (with the contract's code, the fields, the request id and Retry-After).
 *
 * ```ts
 * const code = await unwrap(admin.POST("/v1/referral/codes", { body: {} }));
 * ```
 */
export async function unwrap<R extends { data?: unknown; error?: unknown; response: Response }>(call: Promise<R>): Promise<DataOf<R>> {
  const { data, error, response } = await call;
  if (error !== undefined || !response.ok) {
    throw PhoenixError.fromResponse(response, error);
  }
  return data as DataOf<R>;
}
