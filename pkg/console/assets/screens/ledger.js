// The ledgers (§5.5, §10): rewards and commissions with filters (a commission's state and
// payout among them), paged, and exported as CSV.

import { api, all } from "../api.js";
import { h, latest, clear, field, values, table, pager, badge, when, errorBox, showError, downloadCSV } from "../ui.js";

const ORDER = [["desc", "newest first"], ["asc", "oldest first"]];
const STATES = [["", "any"], ["pending", "pending (held)"], ["available", "available"], ["in_payout", "in a payout"], ["paid", "paid"]];

function ledger({ title, path, filters, columns, keys, file }) {
  const box = errorBox();
  const listing = h("div");
  const f = h("form", { class: "card", "aria-label": `Filter ${title.toLowerCase()}` }, h("h2", { text: title }),
    h("div", { class: "fields" }, filters, field("Order", "order", { kind: "select", options: ORDER })),
    h("div", { class: "actions" }, h("button", { type: "submit", text: "Apply filters" }),
      h("button", { type: "button", text: `Export ${title.toLowerCase()} as CSV`, onclick: async () => {
        try { downloadCSV(file, keys, await all(path, values(f))); } catch (err) { showError(box, err, f); }
      } })));
  const load = latest(async (offset = 0) => {
    try {
      const page = await api("GET", path, { query: { ...values(f), offset, limit: 20 } });
      return () => {
        clear(box);
        clear(listing, table(columns, page.items, { empty: "No rows match." }), pager(page, load));
      };
    } catch (err) { return () => showError(box, err, f); }
  });
  f.addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
  return { section: h("section", { "aria-label": title }, f, box, listing), load };
}

export default {
  id: "ledger",
  title: "Ledger",
  async render(main) {
    const rewards = ledger({
      title: "Rewards", path: "/v1/referral/rewards", file: "rewards.csv",
      filters: [field("User id", "user_id"), field("Campaign id", "campaign_id"), field("Referral id", "referral_id"), field("Event id", "event_id")],
      columns: [
        { label: "Paid", value: (r) => when(r.created_at) },
        { label: "User", value: (r) => r.user_id, mono: true },
        { label: "Role", value: (r) => r.role },
        { label: "Amount", value: (r) => `${r.amount} ${r.currency_id}`, num: true },
        { label: "Event", value: (r) => r.event_id, mono: true },
      ],
      keys: ["id", "created_at", "user_id", "role", "campaign_id", "referral_id", "event_id", "currency_id", "amount"],
    });
    const commissions = ledger({
      title: "Commissions", path: "/v1/affiliate/commissions", file: "commissions.csv",
      filters: [field("Affiliate id", "affiliate_id"), field("Event id", "event_id"), field("Level", "level", { kind: "number" }),
        field("State", "state", { kind: "select", options: STATES }), field("Payout id", "payout_id")],
      columns: [
        { label: "Paid", value: (r) => when(r.created_at) },
        { label: "Affiliate user", value: (r) => r.user_id, mono: true },
        { label: "Level", value: (r) => r.level, num: true },
        { label: "Base", value: (r) => r.base_amount, num: true },
        { label: "Rate", value: (r) => r.rate, num: true },
        { label: "Amount", value: (r) => `${r.amount} ${r.currency_id}`, num: true },
        { label: "Source user", value: (r) => r.source_user_id, mono: true },
        { label: "State", value: (r) => badge(r.state) },
        { label: "Available", value: (r) => when(r.available_at) },
        { label: "Reverses", value: (r) => (r.reverses_id ? `${r.reverses_id}${r.reason ? ` (${r.reason})` : ""}` : null), mono: true },
      ],
      keys: ["id", "created_at", "affiliate_id", "user_id", "level", "source_user_id", "event_id", "rule_id", "tier_id", "rate", "base_amount", "currency_id", "amount",
        "reverses_id", "reason", "available_at", "state"],
    });
    main.append(h("h1", { text: "Ledger" }), rewards.section, commissions.section);
    await Promise.all([rewards.load(), commissions.load()]);
  },
};
