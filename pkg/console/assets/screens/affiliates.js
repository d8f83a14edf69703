// Affiliates (§4.5, §4.8, §10.3): list, create, detail with counters, effective tier and
// balance, status and tier override, the downline as a navigable tree, and moving an affiliate under another.

import { api, ApiError } from "../api.js";
import { h, latest, clear, field, form, values, table, pager, badge, when, link, errorBox, showError, confirmButton } from "../ui.js";

const STATUSES = [["pending", "pending"], ["active", "active"], ["suspended", "suspended"]];

/** node is one affiliate of the downline tree; its children load when it is expanded. */
function node(a, tierName) {
  const kids = h("ul", { hidden: true });
  const toggle = h("button", { type: "button", class: "toggle", "aria-expanded": "false", "aria-label": `Show the downline of ${a.user_id}`, text: "+" });
  let loaded = false;
  toggle.addEventListener("click", async () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    if (open && !loaded) {
      const page = await api("GET", `/v1/affiliates/${a.id}/downline`, { query: { depth: 1, limit: 100 } });
      kids.append(...(page.items.length ? page.items.map((c) => node(c, tierName)) : [h("li", { class: "muted", text: "no affiliates below" })]));
      loaded = true;
    }
    kids.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    toggle.textContent = open ? "−" : "+";
  });
  return h("li", { "data-user": a.user_id }, toggle, " ", link(`#/affiliates/${a.id}`, a.user_id), " ", badge(a.status),
    h("span", { class: "muted", text: ` ${a.converted_referrals} converted · tier ${tierName(a.tier_id)}` }), kids);
}

async function detail(main, id) {
  const [a, tiers, balance] = await Promise.all([api("GET", `/v1/affiliates/${id}`), api("GET", "/v1/affiliate/tiers", { query: { limit: 100 } }),
    api("GET", `/v1/affiliates/${id}/balance`)]);
  const tierName = (tid) => (tid ? (tiers.items.find((t) => t.id === tid) || { name: tid }).name : "none");
  const tierOptions = [["", "none (computed from the counters)"], ...tiers.items.map((t) => [t.id, `${t.name} (${t.commission_rate})`])];
  const box = errorBox();
  const parent = a.parent_affiliate_id ? await api("GET", `/v1/affiliates/${a.parent_affiliate_id}`) : null;
  const rootNode = node(a, tierName);
  main.append(
    h("p", {}, link("#/affiliates", "← All affiliates")),
    h("h1", { text: `Affiliate ${a.user_id}` }),
    h("dl", { class: "kv" },
      h("dt", { text: "Code" }), h("dd", { class: "mono", text: a.affiliate_code }),
      h("dt", { text: "Status" }), h("dd", {}, badge(a.status)),
      h("dt", { text: "Converted referrals" }), h("dd", { id: "affiliate-converted", text: String(a.converted_referrals) }),
      h("dt", { text: "Referee revenue" }), h("dd", { text: String(a.referee_revenue) }),
      h("dt", { text: "Effective tier" }), h("dd", { id: "affiliate-tier", text: tierName(a.tier_id) }),
      h("dt", { text: "Tier override" }), h("dd", { text: a.tier_override_id ? tierName(a.tier_override_id) : "none" }),
      h("dt", { text: "Upline" }), h("dd", { id: "affiliate-parent" }, parent ? link(`#/affiliates/${parent.id}`, parent.user_id) : "none (a root)"),
      h("dt", { text: "Created" }), h("dd", { text: when(a.created_at) })),
    h("h2", { text: "Balance" }),
    h("div", { id: "affiliate-balance" }, table([
      { label: "Currency", value: (b) => b.currency_id },
      { label: "Pending (held)", value: (b) => b.pending, num: true },
      { label: "Available", value: (b) => b.available, num: true },
      { label: "In a payout", value: (b) => b.in_payout, num: true },
      { label: "Paid", value: (b) => b.paid, num: true },
      { label: "Reversed", value: (b) => b.reversed, num: true },
    ], balance.items, { empty: "No commissions yet." })),
    form("Status and tier", [
      field("Status", "status", { kind: "select", options: STATUSES, value: a.status }),
      field("Tier override", "tier_override_id", { kind: "select", options: tierOptions, value: a.tier_override_id ?? "" }),
    ], "Save affiliate", async (f) => {
      const v = values(f);
      const saved = await api("PUT", `/v1/affiliates/${a.id}`, { body: { ...a, status: v.status, tier_override_id: v.tier_override_id || null } });
      location.hash = `#/affiliates/${saved.id}`;
      window.dispatchEvent(new HashChangeEvent("hashchange"));
      return saved;
    }),
    form("Move in the hierarchy", [
      field("New upline's user id", "parent_affiliate_id", { value: parent ? parent.user_id : "", hint: "empty: make it a root" }),
    ], "Move affiliate", async (f) => {
      const user = values(f).parent_affiliate_id;
      let moved;
      if (user) {
        const found = await api("GET", "/v1/affiliates", { query: { user_id: user, limit: 1 } });
        if (!found.items.length) {
          throw new ApiError(404, { error: { code: "NOT_FOUND", message: "no such affiliate", fields: { parent_affiliate_id: `no affiliate has user id ${user}` } } });
        }
        moved = await api("PUT", `/v1/affiliates/${a.id}/hierarchy`, { body: { parent_affiliate_id: found.items[0].id } });
      } else {
        moved = await api("DELETE", `/v1/affiliates/${a.id}/hierarchy`);
      }
      window.dispatchEvent(new HashChangeEvent("hashchange"));
      return moved;
    }),
    h("h2", { text: "Downline" }),
    h("ul", { class: "tree", "aria-label": `Downline of ${a.user_id}` }, rootNode),
    box,
    h("div", { class: "actions" }, confirmButton("Delete affiliate", async () => {
      try { await api("DELETE", `/v1/affiliates/${a.id}`); location.hash = "#/affiliates"; } catch (err) { showError(box, err); }
    })),
  );
  rootNode.querySelector("button.toggle").click();
}

async function list(main) {
  const [tiers] = await Promise.all([api("GET", "/v1/affiliate/tiers", { query: { limit: 100 } })]);
  const tierName = (tid) => (tid ? (tiers.items.find((t) => t.id === tid) || { name: tid }).name : "none");
  const listing = h("div");
  const status = h("select", { id: "affiliate-status" }, [["", "any"], ...STATUSES].map(([v, l]) => h("option", { value: v, text: l })));
  const load = latest(async (offset = 0) => {
    const page = await api("GET", "/v1/affiliates", { query: { status: status.value, offset, limit: 20 } });
    return () => clear(listing, table([
      { label: "User", value: (a) => link(`#/affiliates/${a.id}`, a.user_id), mono: true },
      { label: "Code", value: (a) => a.affiliate_code, mono: true },
      { label: "Status", value: (a) => badge(a.status) },
      { label: "Converted", value: (a) => a.converted_referrals, num: true },
      { label: "Revenue", value: (a) => a.referee_revenue, num: true },
      { label: "Tier", value: (a) => tierName(a.tier_id) },
      { label: "Upline", value: (a) => (a.parent_affiliate_id ? link(`#/affiliates/${a.parent_affiliate_id}`, "upline") : "root") },
    ], page.items, { empty: "No affiliates yet." }), pager(page, load));
  });
  status.addEventListener("change", () => load());
  main.append(h("h1", { text: "Affiliates" }),
    h("div", { class: "field" }, h("label", { for: "affiliate-status", text: "Show" }), status),
    listing,
    form("New affiliate", [
      field("User id", "user_id"),
      field("Affiliate code", "affiliate_code", { hint: "empty: generated; it cannot change later" }),
      field("Status", "status", { kind: "select", options: STATUSES, value: "active" }),
    ], "Create affiliate", async (f) => {
      const v = values(f);
      const a = await api("POST", "/v1/affiliates", { body: { user_id: v.user_id, affiliate_code: v.affiliate_code || undefined, status: v.status } });
      await load();
      return a;
    }, { done: (a) => `Created affiliate ${a.user_id} with code ${a.affiliate_code}.` }));
  await load();
}

export default {
  id: "affiliates",
  title: "Affiliates",
  render: (main, [id]) => (id ? detail(main, id) : list(main)),
};
