// The signed-in admin: the JWT lives in this tab's session storage only (never a cookie or the
// URL), with the tenant chosen for client_admin and super_admin tokens.

const TOKEN = "phoenix.console.token";
const TENANT = "phoenix.console.tenant";

/** ADMIN_ROLES are the roles that may use the console (the admin routes of the API). */
export const ADMIN_ROLES = ["tenant_admin", "client_admin", "super_admin"];

/** claimsOf decodes a JWT's payload without verifying it: the API verifies every call. */
export function claimsOf(token) {
  const parts = token.split(".");
  if (parts.length !== 3) throw new Error("this is not a JWT (three dot-separated parts)");
  const b64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
  const text = new TextDecoder().decode(Uint8Array.from(atob(b64 + "===".slice((b64.length + 3) % 4)), (c) => c.charCodeAt(0)));
  const claims = JSON.parse(text);
  if (typeof claims !== "object" || claims === null) throw new Error("the token's payload is not an object");
  return claims;
}

/** problemOf says why a token cannot sign in to the console, or "" when it can. */
export function problemOf(claims, now = Date.now()) {
  if (!ADMIN_ROLES.includes(claims.role)) return `a ${claims.role || "role-less"} token cannot use the console; sign in with a tenant_admin, client_admin or super_admin token`;
  if (typeof claims.exp !== "number") return "the token has no expiry (exp)";
  if (claims.exp * 1000 <= now) return "the token has expired";
  return "";
}

export const session = {
  token: () => sessionStorage.getItem(TOKEN) || "",
  claims() {
    const t = this.token();
    if (!t) return null;
    try { return claimsOf(t); } catch { return null; }
  },
  signIn(token, tenant) {
    sessionStorage.setItem(TOKEN, token);
    if (tenant) sessionStorage.setItem(TENANT, tenant); else sessionStorage.removeItem(TENANT);
  },
  signOut() {
    sessionStorage.removeItem(TOKEN);
    sessionStorage.removeItem(TENANT);
  },
  /** tenant is the tenant the console works on: the token's own, else the one chosen. */
  tenant() {
    const c = this.claims();
    if (!c) return "";
    return c.tenant_id || sessionStorage.getItem(TENANT) || "";
  },
  setTenant(t) { sessionStorage.setItem(TENANT, t); },
  /** tenantQuery is the ?tenant_id= the API needs: none for a token naming its tenant. */
  tenantQuery() {
    const c = this.claims();
    if (!c || c.tenant_id) return "";
    return sessionStorage.getItem(TENANT) || "";
  },
  /** signedIn is true with a usable admin token and a tenant to work on. */
  signedIn() {
    const c = this.claims();
    return !!c && problemOf(c) === "" && this.tenant() !== "";
  },
};
