// Referral and promo codes (§4.2): list with filters, create, PATCH (active, usage limit,
// expiry), delete, and a code's stats with its claims.

import { api } from "../api.js";
import { h, latest, clear, field, form, values, table, pager, badge, when, link, errorBox, showError, confirmButton } from "../ui.js";

function optional(v) { return v === "" ? undefined : v; }

async function campaignOptions() {
  const page = await api("GET", "/v1/referral/campaigns", { query: { limit: 100 } });
  return [["", "none (any campaign)"], ...page.items.map((c) => [c.id, c.name])];
}

async function detail(main, id) {
  const box = errorBox();
  const body = h("div");
  const claims = h("div");
  const loadClaims = async (offset = 0) => {
    const s = await api("GET", `/v1/referral/codes/${id}/stats`, { query: { limit: 20, offset } });
    clear(claims, h("p", { text: `${s.total_claims} claim(s).` }), table([
      { label: "Claimed", value: (r) => when(r.claimed_at) },
      { label: "Referee", value: (r) => r.referee_id, mono: true },
      { label: "Status", value: (r) => badge(r.status) },
      { label: "Referral", value: (r) => link(`#/referrals/${r.referral_id}`, "Open") },
    ], s.claims, { empty: "Nobody has claimed this code yet." }), pager({ items: s.claims, total: s.total_claims, limit: s.limit, offset: s.offset }, loadClaims));
    return s.code;
  };
  const show = (c, options) => clear(body,
    h("h1", { text: `Code ${c.code}` }),
    h("dl", { class: "kv" },
      h("dt", { text: "Owner" }), h("dd", { class: "mono", text: c.owner_user_id ?? "admin (no referrer)" }),
      h("dt", { text: "Uses" }), h("dd", { id: "code-uses", text: `${c.uses} of ${c.usage_limit ?? "unlimited"}` }),
      h("dt", { text: "Status" }), h("dd", {}, badge(c.active ? "active" : "inactive")),
      h("dt", { text: "Expires" }), h("dd", { text: when(c.expires_at) ?? "never" }),
      c.referral_url ? [h("dt", { text: "Link" }), h("dd", { class: "mono", text: c.referral_url })] : null),
    form("Change code", [
      field("Active", "active", { kind: "checkbox", value: c.active }),
      field("Usage limit", "usage_limit", { kind: "number", value: c.usage_limit, hint: "empty: unlimited" }),
      field("Expires at", "expires_at", { kind: "datetime", value: c.expires_at }),
      field("Campaign", "campaign_id", { kind: "select", options, value: c.campaign_id ?? "" }),
    ], "Save changes", async (f) => {
      const v = values(f);
      const saved = await api("PATCH", `/v1/referral/codes/${c.id}`, { body: { active: v.active, usage_limit: v.usage_limit, expires_at: v.expires_at, campaign_id: v.campaign_id || null } });
      show(saved, options);
      return saved;
    }),
    h("h2", { text: "Claims" }), claims, box,
    h("div", { class: "actions" }, confirmButton("Delete code", async () => {
      try { await api("DELETE", `/v1/referral/codes/${c.id}`); location.hash = "#/codes"; } catch (err) { showError(box, err); }
    })));
  main.append(h("p", {}, link("#/codes", "← All codes")), body);
  const [code, options] = await Promise.all([loadClaims(), campaignOptions()]);
  show(code, options);
}

async function list(main) {
  const options = await campaignOptions();
  const listing = h("div");
  const filters = h("form", { class: "card", "aria-label": "Filter codes" }, h("h2", { text: "Filter" }), h("div", { class: "fields" },
    field("Owner user id", "owner_user_id"),
    field("Campaign", "campaign_id", { kind: "select", options: [["", "any"], ...options.slice(1)] }),
    field("Active", "active", { kind: "select", options: [["", "any"], ["true", "active"], ["false", "inactive"]] })),
    h("div", { class: "actions" }, h("button", { type: "submit", text: "Apply filters" })));
  const box = errorBox();
  const load = latest(async (offset = 0) => {
    try {
      const page = await api("GET", "/v1/referral/codes", { query: { ...values(filters), offset, limit: 20 } });
      return () => {
        clear(box);
        clear(listing, table([
          { label: "Code", value: (c) => link(`#/codes/${c.id}`, c.code), mono: true },
          { label: "Owner", value: (c) => c.owner_user_id ?? "admin", mono: true },
          { label: "Uses", value: (c) => `${c.uses} / ${c.usage_limit ?? "∞"}`, num: true },
          { label: "Status", value: (c) => badge(c.active ? "active" : "inactive") },
          { label: "Expires", value: (c) => when(c.expires_at) ?? "never" },
          { label: "Created", value: (c) => when(c.created_at) },
        ], page.items, { empty: "No codes match." }), pager(page, load));
      };
    } catch (err) { return () => showError(box, err, filters); }
  });
  filters.addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
  main.append(h("h1", { text: "Codes" }), filters, box, listing, form("New code", [
    field("Code", "code", { hint: "3–32 of A–Z, 0–9, '_' and '-'; empty: generated" }),
    field("Owner user id", "owner_user_id", { hint: "empty: an admin-owned promo code" }),
    field("Campaign", "campaign_id", { kind: "select", options }),
    field("Usage limit", "usage_limit", { kind: "number", hint: "empty: unlimited" }),
    field("Expires at", "expires_at", { kind: "datetime" }),
    field("Active", "active", { kind: "checkbox", value: true }),
  ], "Create code", async (f) => {
    const v = values(f);
    const c = await api("POST", "/v1/referral/codes", { body: { code: optional(v.code), owner_user_id: optional(v.owner_user_id), campaign_id: optional(v.campaign_id),
      usage_limit: v.usage_limit, expires_at: v.expires_at, active: v.active } });
    await load();
    return c;
  }, { done: (c) => `Created code ${c.code}.` }));
  await load();
}

export default {
  id: "codes",
  title: "Codes",
  render: (main, [id]) => (id ? detail(main, id) : list(main)),
};
