// The affiliate programme (§4.6–§4.8, §10.2): tiers, commission rules, the hierarchy policy and
// the payout policy.

import { api, ApiError } from "../api.js";
import { h, latest, clear, field, form, values, parseJSON, table, errorBox, showError, confirmButton } from "../ui.js";

/**
 * resource is a list of one resource with a form that creates one, or edits the one whose
 * Edit button was pressed (PUT sends back what was read with the edits on top).
 */
function resource({ title, noun, path, columns, fields, body }) {
  const section = h("section", { "aria-label": title });
  const box = errorBox();
  const listing = h("div");
  const formSlot = h("div");
  const edit = (obj) => {
    const f = form(obj ? `Edit ${noun} ${obj.name}` : `New ${noun}`, fields(obj), obj ? `Save ${noun}` : `Create ${noun}`, async (f) => {
      const b = body(values(f), f);
      const saved = obj ? await api("PUT", `${path}/${obj.id}`, { body: { ...obj, ...b } }) : await api("POST", path, { body: b });
      await load();
      edit(null);
      return saved;
    }, { done: (s) => `Saved ${noun} ${s.name}.` });
    if (obj) f.querySelector(".actions").append(h("button", { type: "button", text: "Cancel", onclick: () => edit(null) }));
    clear(formSlot, f);
    if (obj) f.querySelector("input, select, textarea").focus();
  };
  const load = latest(async () => {
    const page = await api("GET", path, { query: { limit: 100 } });
    return () => clear(listing, table([...columns, { label: "", value: (o) => h("span", { class: "actions" },
      h("button", { type: "button", text: "Edit", "aria-label": `Edit ${o.name}`, onclick: () => edit(o) }),
      confirmButton("Delete", async () => {
        try { await api("DELETE", `${path}/${o.id}`); clear(box); await load(); } catch (err) { showError(box, err); }
      })) }], page.items, { empty: `No ${noun}s yet.` }));
  });
  section.append(h("h2", { text: title }), box, listing, formSlot);
  edit(null);
  return { section, load };
}

const tiers = () => resource({
  title: "Tiers", noun: "tier", path: "/v1/affiliate/tiers",
  columns: [
    { label: "Name", value: (t) => t.name },
    { label: "Rate", value: (t) => t.commission_rate, num: true },
    { label: "Min referrals", value: (t) => t.min_referrals, num: true },
    { label: "Min revenue", value: (t) => t.min_referee_revenue, num: true },
    { label: "Priority", value: (t) => t.priority, num: true },
  ],
  fields: (t) => [
    field("Name", "name", { value: t?.name }),
    field("Commission rate", "commission_rate", { kind: "number", value: t?.commission_rate, hint: "0–1, e.g. 0.05" }),
    field("Min converted referrals", "min_referrals", { kind: "number", value: t?.min_referrals ?? 0 }),
    field("Min referee revenue", "min_referee_revenue", { kind: "number", value: t?.min_referee_revenue ?? 0 }),
    field("Priority", "priority", { kind: "number", value: t?.priority ?? 0, hint: "the highest reached tier wins" }),
  ],
  body: (v) => v,
});

const rules = () => resource({
  title: "Commission rules", noun: "rule", path: "/v1/affiliate/commission-rules",
  columns: [
    { label: "Name", value: (r) => r.name },
    { label: "Event", value: (r) => r.event_type, mono: true },
    { label: "Filter", value: (r) => (r.event_filter ? JSON.stringify(r.event_filter) : "any event"), mono: true },
    { label: "Base field", value: (r) => r.commission_field, mono: true },
    { label: "Rate", value: (r) => (r.use_tier_rate ? "tier rate" : r.custom_rate) },
    { label: "Currency", value: (r) => r.currency_id },
    { label: "Active", value: (r) => (r.active ? "yes" : "no") },
  ],
  fields: (r) => [
    field("Name", "name", { value: r?.name }),
    field("Event type", "event_type", { value: r?.event_type ?? "deposit.completed" }),
    field("Commission field", "commission_field", { value: r?.commission_field ?? "amount", hint: "dotted path into the payload" }),
    field("Currency", "currency_id", { value: r?.currency_id ?? "EUR" }),
    field("Use the tier's rate", "use_tier_rate", { kind: "checkbox", value: r ? r.use_tier_rate : true }),
    field("Custom rate", "custom_rate", { kind: "number", value: r?.custom_rate, hint: "0–1; only without the tier's rate" }),
    field("Active", "active", { kind: "checkbox", value: r ? r.active : true }),
    field("Event filter (JSON)", "event_filter", { kind: "json", value: r?.event_filter, placeholder: '{"amount": {"gte": 1000}}' }),
  ],
  body: (v, f) => ({ ...v, custom_rate: v.use_tier_rate ? null : v.custom_rate, event_filter: parseJSON(f, "event_filter") }),
});

async function policy() {
  const section = h("section", { "aria-label": "Hierarchy policy" });
  let p = null;
  try { p = await api("GET", "/v1/affiliate/hierarchy"); } catch (err) { if (!(err instanceof ApiError && err.status === 404)) throw err; }
  const render = () => clear(section, h("h2", { text: "Hierarchy policy" }),
    h("p", { class: "muted", id: "policy-state", text: p ? `Active: ${p.active ? "yes" : "no"}; ${p.max_depth} level(s) above the direct affiliate: ${p.level_rates.join(", ") || "none"}.` : "No policy yet: only direct affiliates earn commissions." }),
    form("Change the hierarchy policy", [
      field("Max depth", "max_depth", { kind: "number", value: p?.max_depth ?? 0, hint: "0–10 ancestors paid" }),
      field("Level rates", "level_rates", { value: p ? p.level_rates.join(", ") : "", hint: "one rate per level, comma-separated, sum ≤ 1" }),
      field("Active", "active", { kind: "checkbox", value: p ? p.active : true }),
    ], "Save policy", async (f) => {
      const v = values(f);
      const rates = v.level_rates === "" ? [] : v.level_rates.split(",").map((s) => Number(s.trim()));
      p = await api("PUT", "/v1/affiliate/hierarchy", { body: { max_depth: v.max_depth, level_rates: rates, active: v.active } });
      render();
      return p;
    }));
  render();
  return section;
}

/** minimums reads "50 EUR, 1000 points" as minimum payout lines. */
function minimums(text) {
  return text.split(",").map((s) => s.trim()).filter(Boolean).map((line) => {
    const [amount, ...currency] = line.split(/\s+/);
    return { amount: Number(amount), currency_id: currency.join(" ") };
  });
}

async function payoutPolicy() {
  const section = h("section", { "aria-label": "Payout policy" });
  let p = await api("GET", "/v1/affiliate/payout-policy");
  const render = () => clear(section, h("h2", { text: "Payout policy" }),
    h("p", { class: "muted", id: "payout-policy-state", text: `Commissions are held ${p.hold_days} day(s) before they can be paid; minimum payout: ${p.minimum_payout.map((m) => `${m.amount} ${m.currency_id}`).join(", ") || "none"}.` }),
    form("Change the payout policy", [
      field("Hold days", "hold_days", { kind: "number", value: p.hold_days, hint: "0–365; applies to commissions written from now on" }),
      field("Minimum payout", "minimum_payout", { value: p.minimum_payout.map((m) => `${m.amount} ${m.currency_id}`).join(", "), hint: "amount and currency, comma-separated, e.g. 50 EUR, 1000 points" }),
    ], "Save payout policy", async (f) => {
      const v = values(f);
      p = await api("PUT", "/v1/affiliate/payout-policy", { body: { hold_days: v.hold_days, minimum_payout: minimums(v.minimum_payout) } });
      render();
      return p;
    }));
  render();
  return section;
}

export default {
  id: "programme",
  title: "Tiers & rules",
  async render(main) {
    const t = tiers(), r = rules();
    main.append(h("h1", { text: "Tiers, commission rules and hierarchy" }), t.section, r.section, await policy(), await payoutPolicy());
    await Promise.all([t.load(), r.load()]);
  },
};
