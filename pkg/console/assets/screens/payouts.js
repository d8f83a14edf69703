// Payouts (§10.3): a run for a currency (every active affiliate, or the listed ones), the
// payouts with filters, and marking a pending payout paid or failed.

import { api, ApiError } from "../api.js";
import { h, latest, clear, field, form, values, table, pager, badge, when, link, errorBox, showError } from "../ui.js";

const STATUSES = [["", "any"], ["pending", "pending"], ["paid", "paid"], ["failed", "failed"]];

/** affiliateIDs resolves comma-separated user ids to affiliate ids (null for none: all of them). */
async function affiliateIDs(users) {
  const names = users.split(",").map((s) => s.trim()).filter(Boolean);
  if (!names.length) return null;
  const found = await Promise.all(names.map((u) => api("GET", "/v1/affiliates", { query: { user_id: u, limit: 1 } })));
  const missing = names.filter((_, i) => !found[i].items.length);
  if (missing.length) {
    throw new ApiError(404, { error: { code: "NOT_FOUND", message: "no such affiliate", fields: { affiliate_ids: `no affiliate has user id ${missing.join(", ")}` } } });
  }
  return found.map((p) => p.items[0].id);
}

/** statusForm marks a pending payout paid (with the transfer's reference) or failed. */
function statusForm(p, done) {
  return form(`Payout to ${p.user_id}`, [
    field("Outcome", "status", { kind: "select", options: [["paid", "paid"], ["failed", "failed (its rows are payable again)"]] }),
    field("Reference", "reference", { hint: "optional, e.g. the bank transfer's id" }),
  ], "Save outcome", async (f) => {
    const v = values(f);
    const saved = await api("PUT", `/v1/affiliate/payouts/${p.id}/status`, { body: { status: v.status, reference: v.reference || undefined } });
    await done(saved);
    return saved;
  });
}

export default {
  id: "payouts",
  title: "Payouts",
  async render(main) {
    const box = errorBox();
    const listing = h("div");
    const formSlot = h("div");
    const result = h("div", { id: "payout-run-result", "aria-live": "polite" });
    const run = form("Run payouts", [
      field("Currency", "currency_id", { value: "EUR" }),
      field("Affiliates", "affiliate_ids", { hint: "user ids, comma-separated; empty: every affiliate" }),
    ], "Run payouts", async (f) => {
      const v = values(f);
      const res = await api("POST", "/v1/affiliate/payouts", { body: { currency_id: v.currency_id, affiliate_ids: await affiliateIDs(v.affiliate_ids) ?? undefined } });
      const total = res.items.reduce((s, p) => s + p.amount, 0);
      clear(result, h("p", { text: `Created ${res.items.length} payout(s) of ${total} ${v.currency_id}; skipped ${res.skipped.length}.` }),
        res.skipped.length ? table([
          { label: "Skipped affiliate", value: (s) => link(`#/affiliates/${s.affiliate_id}`, s.affiliate_id), mono: true },
          { label: "Reason", value: (s) => s.reason, mono: true },
        ], res.skipped) : null);
      await load();
      return res;
    });
    run.append(result);
    const filters = h("form", { class: "card", "aria-label": "Filter payouts" }, h("h2", { text: "Filter" }), h("div", { class: "fields" },
      field("Status", "status", { kind: "select", options: STATUSES }),
      field("Currency", "currency_id"),
      field("Affiliate id", "affiliate_id")),
      h("div", { class: "actions" }, h("button", { type: "submit", text: "Apply filters" })));
    const open = (p) => {
      const f = statusForm(p, async (saved) => {
        clear(formSlot, h("p", { class: "notice ok", role: "status", text: `Payout to ${saved.user_id} ${saved.status}.` }));
        await load();
      });
      clear(formSlot, f);
      f.querySelector("select").focus();
    };
    const load = latest(async (offset = 0) => {
      try {
        const page = await api("GET", "/v1/affiliate/payouts", { query: { ...values(filters), offset, limit: 20 } });
        return () => {
          clear(box);
          clear(listing, table([
            { label: "Created", value: (p) => when(p.created_at) },
            { label: "Affiliate", value: (p) => link(`#/affiliates/${p.affiliate_id}`, p.user_id), mono: true },
            { label: "Amount", value: (p) => `${p.amount} ${p.currency_id}`, num: true },
            { label: "Rows", value: (p) => p.rows, num: true },
            { label: "Status", value: (p) => badge(p.status) },
            { label: "Reference", value: (p) => p.reference },
            { label: "Paid", value: (p) => when(p.paid_at) },
            { label: "", value: (p) => (p.status === "pending" ? h("button", { type: "button", text: "Record outcome", "aria-label": `Record the outcome of the payout to ${p.user_id}`, onclick: () => open(p) }) : null) },
          ], page.items, { empty: "No payouts match." }), pager(page, load));
        };
      } catch (err) { return () => showError(box, err, filters); }
    });
    filters.addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
    main.append(h("h1", { text: "Payouts" }), run, filters, box, listing, formSlot);
    await load();
  },
};
