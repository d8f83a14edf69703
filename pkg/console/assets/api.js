// The one way the console talks to the Admin Gateway: the public /v1 API with the signed-in JWT.

import { session } from "./session.js";

/** ApiError is an error answer of the API: its status and the contract's envelope. */
export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `the gateway answered ${status}`);
    this.status = status;
    this.code = e.code || `HTTP_${status}`;
    this.fields = e.fields || {};
  }
}

let onUnauthorized = () => {};

/** whenUnauthorized sets what happens on a 401 (the token expired or was refused). */
export function whenUnauthorized(fn) { onUnauthorized = fn; }

/** url builds an API URL with the session's tenant and the non-empty query values. */
export function url(path, query = {}) {
  const u = new URL(path, location.origin);
  const t = session.tenantQuery();
  if (t) u.searchParams.set("tenant_id", t);
  for (const [k, v] of Object.entries(query)) {
    if (v !== "" && v !== null && v !== undefined) u.searchParams.set(k, String(v));
  }
  return u;
}

/** api calls the API and returns the decoded answer (null for 204); it throws ApiError. */
export async function api(method, path, { query, body, token } = {}) {
  const headers = { Accept: "application/json", Authorization: `Bearer ${token || session.token()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(url(path, query), { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, { error: { code: "NETWORK", message: `the gateway could not be reached (${e.message})` } });
  }
  if (res.status === 204) return null;
  let data = null;
  try { data = await res.json(); } catch { /* a non-JSON answer is reported by status */ }
  if (!res.ok) {
    const err = new ApiError(res.status, data);
    if (res.status === 401 && !token) onUnauthorized(err);
    throw err;
  }
  return data;
}

/** all reads every page of a list route (up to max items). */
export async function all(path, query = {}, max = 5000) {
  const items = [];
  for (let offset = 0; offset < max; offset += 100) {
    const page = await api("GET", path, { query: { ...query, limit: 100, offset } });
    items.push(...page.items);
    if (page.items.length < 100 || items.length >= page.total) break;
  }
  return items;
}
