// Campaigns (§4.1): list, create and edit with a filter editor, delete, and a dry run of an
// event through simulate (§5.5).

import { api } from "../api.js";
import { h, latest, clear, field, form, values, parseJSON, table, pager, badge, when, wallet, link, errorBox, showError, confirmButton } from "../ui.js";

const FILTER_HINT = 'Dotted payload paths → a literal or an operator object (eq, ne, gt, gte, lt, lte, in). Example: {"amount": {"gte": 1000}, "currency": {"in": ["EUR", "USD"]}}. Empty matches every event.';

/** walletField edits the wallet lines of a rewards object, one currency and amount per row. */
function walletField(label, name, rewards) {
  const rows = h("div");
  const wrap = h("div", { class: "field", "data-field": name }, h("span", { class: "label", id: `${name}-label`, text: label }), rows);
  const add = (w = { currency_id: "", amount: "" }) => {
    const n = rows.children.length + 1;
    const cur = h("input", { "aria-label": `${label}: currency ${n}`, placeholder: "currency, e.g. points", value: w.currency_id, "data-wallet": "currency" });
    const amt = h("input", { "aria-label": `${label}: amount ${n}`, type: "number", min: "1", step: "1", placeholder: "amount", value: w.amount, "data-wallet": "amount" });
    const row = h("div", { class: "wallet-row" }, cur, amt, h("button", { type: "button", text: "Remove", "aria-label": `Remove ${label.toLowerCase()} ${n}`, onclick: () => row.remove() }));
    rows.append(row);
  };
  ((rewards && rewards.wallet) || []).forEach(add);
  wrap.append(h("button", { type: "button", text: "Add reward", "aria-label": `Add ${label.toLowerCase()}`, onclick: () => add() }), h("p", { class: "field-error" }));
  wrap.read = () => ({ wallet: [...rows.children].map((r) => ({
    currency_id: r.querySelector('[data-wallet="currency"]').value.trim(),
    amount: Number(r.querySelector('[data-wallet="amount"]').value),
  })) });
  return wrap;
}

/**
 * milestonesField edits a campaign's milestones (§13), one reward line per row: the count of
 * successful referrals, a currency and an amount. Rows with the same count are one milestone
 * paying each of their lines; milestones are sent in increasing order of their counts.
 */
function milestonesField(milestones) {
  const label = "Milestones";
  const rows = h("div");
  const wrap = h("div", { class: "field wide", "data-field": "milestones" }, h("span", { class: "label", text: label }),
    h("span", { class: "hint", text: "Paid once to a referrer when their successful referrals in this campaign reach the count." }), rows);
  const add = (n = "", w = { currency_id: "", amount: "" }) => {
    const i = rows.children.length + 1;
    const row = h("div", { class: "wallet-row", "data-milestone": "" },
      h("input", { "aria-label": `Milestone ${i}: successful referrals`, type: "number", min: "1", step: "1", placeholder: "referrals, e.g. 5", value: n, "data-wallet": "count" }),
      h("input", { "aria-label": `Milestone ${i}: currency`, placeholder: "currency, e.g. points", value: w.currency_id, "data-wallet": "currency" }),
      h("input", { "aria-label": `Milestone ${i}: amount`, type: "number", min: "1", step: "1", placeholder: "amount", value: w.amount, "data-wallet": "amount" }));
    row.append(h("button", { type: "button", text: "Remove", "aria-label": `Remove milestone ${i}`, onclick: () => row.remove() }));
    rows.append(row);
  };
  for (const m of milestones || []) for (const w of (m.rewards && m.rewards.wallet) || []) add(m.successful_referrals, w);
  wrap.append(h("button", { type: "button", text: "Add milestone", onclick: () => add() }), h("p", { class: "field-error" }));
  wrap.read = () => {
    const byCount = new Map();
    for (const r of rows.children) {
      const n = Number(r.querySelector('[data-wallet="count"]').value);
      if (!byCount.has(n)) byCount.set(n, { successful_referrals: n, rewards: { wallet: [] } });
      byCount.get(n).rewards.wallet.push({ currency_id: r.querySelector('[data-wallet="currency"]').value.trim(), amount: Number(r.querySelector('[data-wallet="amount"]').value) });
    }
    return [...byCount.values()].sort((a, b) => a.successful_referrals - b.successful_referrals);
  };
  return wrap;
}

/** campaignForm edits a campaign; PUT sends back what was read with the edits on top. */
function campaignForm(c, onSaved) {
  const referrer = walletField("Referrer rewards", "referrer_rewards", c ? c.referrer_rewards : { wallet: [{ currency_id: "points", amount: 100 }] });
  const referee = walletField("Referee rewards", "referee_rewards", c ? c.referee_rewards : { wallet: [{ currency_id: "points", amount: 50 }] });
  const milestones = milestonesField(c ? c.milestones : []);
  const fields = [
    field("Name", "name", { value: c?.name, required: true }),
    field("Qualifying event", "qualifying_event", { value: c?.qualifying_event ?? "deposit.completed", hint: "lower-case letters, digits, '.', '_' and '-'" }),
    field("Active", "active", { kind: "checkbox", value: c ? c.active : true }),
    field("Starts at", "starts_at", { kind: "datetime", value: c?.starts_at }),
    field("Ends at", "ends_at", { kind: "datetime", value: c?.ends_at }),
    field("Qualifying filter (JSON)", "qualifying_filter", { kind: "json", value: c?.qualifying_filter, hint: FILTER_HINT, placeholder: '{"amount": {"gte": 1000}}' }),
    referrer, referee, milestones,
  ];
  return form(c ? "Edit campaign" : "New campaign", fields, c ? "Save campaign" : "Create campaign", async (f) => {
    const v = values(f);
    const body = { name: v.name, qualifying_event: v.qualifying_event, active: v.active, starts_at: v.starts_at, ends_at: v.ends_at,
      qualifying_filter: parseJSON(f, "qualifying_filter"), referrer_rewards: referrer.read(), referee_rewards: referee.read(), milestones: milestones.read() };
    const saved = c
      ? await api("PUT", `/v1/referral/campaigns/${c.id}`, { body: { ...c, ...body } })
      : await api("POST", "/v1/referral/campaigns", { body });
    onSaved(saved);
    return saved;
  }, { done: (s) => `Saved campaign ${s.name}.` });
}

/** simulateForm runs an event through the rules without writing anything. */
function simulateForm(c) {
  const out = h("div", { "aria-live": "polite" });
  const f = form("Dry run (simulate an event)", [
    field("Event type", "type", { value: c.qualifying_event }),
    field("User id (the referee)", "user_id"),
    field("Payload (JSON)", "payload", { kind: "json", value: { amount: 5000, currency: "EUR" } }),
  ], "Simulate", async (form) => {
    const v = values(form);
    const res = await api("POST", "/v1/affiliate/simulate", { body: { event_id: `console-sim-${Date.now()}`, type: v.type, user_id: v.user_id, payload: parseJSON(form, "payload", {}) } });
    clear(out, h("p", { id: "simulate-result", text: `Status: ${res.status}. ${res.rewards.length} reward(s), ${res.commissions.length} commission(s) would be paid.` }),
      table([
        { label: "Beneficiary", value: (r) => r.user_id, mono: true },
        { label: "Role", value: (r) => r.role },
        { label: "Amount", value: (r) => `${r.amount} ${r.currency_id}`, num: true },
        { label: "Campaign", value: (r) => r.campaign_id, mono: true },
      ], res.rewards, { empty: "No rewards." }),
      res.commissions.length ? table([
        { label: "Affiliate user", value: (r) => r.user_id, mono: true },
        { label: "Level", value: (r) => r.level, num: true },
        { label: "Amount", value: (r) => `${r.amount} ${r.currency_id}`, num: true },
      ], res.commissions) : null);
    return res;
  });
  f.append(out);
  return f;
}

async function detail(main, id) {
  const c = await api("GET", `/v1/referral/campaigns/${id}`);
  const box = errorBox();
  main.append(
    h("p", {}, link("#/campaigns", "← All campaigns")),
    h("h1", { text: `Campaign ${c.name}` }),
    h("dl", { class: "kv" },
      h("dt", { text: "Id" }), h("dd", { class: "mono", text: c.id }),
      h("dt", { text: "Status" }), h("dd", {}, badge(c.active ? "active" : "inactive")),
      h("dt", { text: "Created" }), h("dd", { text: when(c.created_at) }),
      h("dt", { text: "Updated" }), h("dd", { text: when(c.updated_at) })),
    campaignForm(c, () => {}),
    simulateForm(c),
    box,
    h("div", { class: "actions" }, confirmButton("Delete campaign", async () => {
      try { await api("DELETE", `/v1/referral/campaigns/${c.id}`); location.hash = "#/campaigns"; } catch (err) { showError(box, err); }
    })),
  );
}

async function list(main) {
  const listing = h("div");
  const active = h("select", { id: "campaign-active" }, [["", "any"], ["true", "active"], ["false", "inactive"]].map(([v, l]) => h("option", { value: v, text: l })));
  const load = latest(async (offset = 0) => {
    const page = await api("GET", "/v1/referral/campaigns", { query: { active: active.value, offset, limit: 20 } });
    return () => clear(listing, table([
      { label: "Name", value: (c) => link(`#/campaigns/${c.id}`, c.name) },
      { label: "Event", value: (c) => c.qualifying_event, mono: true },
      { label: "Filter", value: (c) => (c.qualifying_filter ? JSON.stringify(c.qualifying_filter) : "any event"), mono: true },
      { label: "Referrer gets", value: (c) => wallet(c.referrer_rewards) },
      { label: "Referee gets", value: (c) => wallet(c.referee_rewards) },
      { label: "Milestones", value: (c) => (c.milestones.length ? c.milestones.map((m) => `${m.successful_referrals}: ${wallet(m.rewards)}`).join("; ") : "none") },
      { label: "Status", value: (c) => badge(c.active ? "active" : "inactive") },
    ], page.items, { empty: "No campaigns yet." }), pager(page, load));
  });
  active.addEventListener("change", () => load());
  main.append(h("h1", { text: "Campaigns" }),
    h("div", { class: "field" }, h("label", { for: "campaign-active", text: "Show" }), active),
    listing, campaignForm(null, () => load()));
  await load();
}

export default {
  id: "campaigns",
  title: "Campaigns",
  render: (main, [id]) => (id ? detail(main, id) : list(main)),
};
