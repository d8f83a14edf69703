// The console's shell: sign-in, the tenant picker, navigation and the hash router. Each screen
// is a module in screens/ listed in screens/index.js.

import { api, ApiError, whenUnauthorized } from "./api.js";
import { session, claimsOf, problemOf } from "./session.js";
import { h, clear, field, form, errorBox, showError } from "./ui.js";
import { screens } from "./screens/index.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const bar = document.getElementById("session");
const devSignIn = document.querySelector('meta[name="phoenix-dev-sign-in"]') !== null;
// notice says why the tab was signed out; it stays on the sign-in page until a sign-in.
let notice = "";
// generation counts renders, so a screen still loading when another replaced it stays quiet.
let generation = 0;

whenUnauthorized((err) => {
  session.signOut();
  notice = `Signed out: ${err.message}. Sign in again.`;
  route();
});

/** route renders the screen the location's hash names. */
async function route() {
  const mine = ++generation;
  const [name = "", ...rest] = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const claims = session.claims();
  if (claims && problemOf(claims)) {
    session.signOut();
    notice = `Signed out: ${problemOf(claims)}. Sign in again.`;
  }
  if (!session.signedIn()) {
    renderSignIn();
    return;
  }
  const screen = screens.find((s) => s.id === name) || screens[0];
  renderChrome(screen);
  clear(main);
  main.focus({ preventScroll: true });
  document.title = `${screen.title} · Phoenix Referral console`;
  try {
    await screen.render(main, rest);
  } catch (err) {
    if (mine !== generation) return;
    const box = errorBox();
    box.id = "screen-error";
    main.append(box);
    showError(box, err);
  }
}

function renderChrome(current) {
  nav.hidden = false;
  clear(nav, screens.map((s) => h("a", { href: `#/${s.id}`, "aria-current": s === current ? "page" : null, text: s.title })));
  const c = session.claims();
  const who = h("span", { class: "who", text: `${c.sub} (${c.role})` });
  let tenant;
  if (c.tenant_id) {
    tenant = h("span", { text: `Tenant ${c.tenant_id}` });
  } else if (Array.isArray(c.tenant_ids)) {
    const sel = h("select", { id: "tenant-switch" }, c.tenant_ids.map((t) => h("option", { value: t, text: t })));
    sel.value = session.tenant();
    sel.addEventListener("change", () => { session.setTenant(sel.value); route(); });
    tenant = [h("label", { for: "tenant-switch", text: "Tenant" }), sel];
  } else {
    const input = h("input", { id: "tenant-switch", value: session.tenant(), "aria-label": "Tenant id" });
    const f = h("form", { class: "session" }, h("label", { for: "tenant-switch", text: "Tenant" }), input, h("button", { type: "submit", text: "Switch" }));
    f.addEventListener("submit", (ev) => { ev.preventDefault(); if (input.value.trim()) { session.setTenant(input.value.trim()); route(); } });
    tenant = f;
  }
  const out = h("button", { type: "button", id: "sign-out", text: "Sign out", onclick: () => { session.signOut(); location.hash = "#/sign-in"; route(); } });
  bar.hidden = false;
  clear(bar, who, tenant, out);
}

function renderSignIn() {
  nav.hidden = true;
  bar.hidden = true;
  document.title = "Sign in · Phoenix Referral console";
  const box = errorBox();
  box.textContent = notice;
  const tokenField = field("Admin JWT", "token", { kind: "textarea", hint: "A tenant_admin, client_admin or super_admin token. It is kept in this tab only." });
  const tenantSlot = h("div", { class: "fields" });
  let picked = null;
  // The tenant control follows the token: none for tenant_admin, a picker over tenant_ids for
  // client_admin, a text field for super_admin.
  const onToken = () => {
    clear(tenantSlot);
    picked = null;
    let c;
    try { c = claimsOf(tokenField.control.value.trim()); } catch { return; }
    if (Array.isArray(c.tenant_ids) && !c.tenant_id) {
      picked = field("Tenant", "tenant", { kind: "select", options: c.tenant_ids.map((t) => [t, t]) });
    } else if (c.role === "super_admin" && !c.tenant_id) {
      picked = field("Tenant id", "tenant", { hint: "A super_admin works on any tenant: type its id." });
    }
    if (picked) tenantSlot.append(picked);
  };
  tokenField.control.addEventListener("input", onToken);
  const signIn = form("Sign in", [tokenField, tenantSlot], "Sign in", async (f) => {
    const token = tokenField.control.value.trim();
    let claims;
    try { claims = claimsOf(token); } catch (e) {
      throw new ApiError(400, { error: { code: "INVALID_TOKEN", message: e.message, fields: { token: e.message } } });
    }
    const problem = problemOf(claims);
    if (problem) throw new ApiError(400, { error: { code: "INVALID_TOKEN", message: problem, fields: { token: problem } } });
    const tenant = claims.tenant_id || (picked ? picked.control.value.trim() : "");
    if (!tenant) throw new ApiError(400, { error: { code: "TENANT_REQUIRED", message: "choose the tenant to work on", fields: { tenant: "required" } } });
    await enter(token, tenant, f);
  });
  const parts = [h("h1", { text: "Phoenix Referral console" }), box, signIn];
  if (devSignIn) {
    parts.push(form("Development sign-in", [
      field("Tenant id", "tenant_id", { value: "demo", hint: "Development only (PHOENIX_DEV=true): mints a tenant_admin token for this tenant." }),
    ], "Sign in as tenant admin", async (f) => {
      const res = await fetch("dev-token", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ tenant_id: f.elements.tenant_id.value.trim() }) });
      const data = await res.json();
      if (!res.ok) throw new ApiError(res.status, data);
      await enter(data.token, f.elements.tenant_id.value.trim(), f);
    }));
  }
  clear(main, h("div", { class: "signin" }, parts));
  tokenField.control.focus();
}

/** enter checks the token against the API (one admin read) before keeping it. */
async function enter(token, tenant, f) {
  const claims = claimsOf(token);
  session.signIn(token, claims.tenant_id ? "" : tenant);
  try {
    await api("GET", "/v1/referral/stats", { query: { period: "7d" }, token });
  } catch (err) {
    session.signOut();
    throw err;
  }
  notice = "";
  if (!location.hash || location.hash === "#/sign-in") location.hash = "#/overview";
  else route();
}

window.addEventListener("hashchange", route);
route();
