// Referrals (§4.4): filters, a referral's detail and its status changes.

import { api } from "../api.js";
import { h, latest, clear, field, form, values, table, pager, badge, when, link, errorBox, showError, jsonText } from "../ui.js";

const STATUSES = [["", "any"], ["pending", "pending"], ["converted", "converted"], ["verified", "verified"], ["rejected", "rejected"]];

async function detail(main, id) {
  const body = h("div");
  const show = (r) => clear(body,
    h("h1", { text: `Referral of ${r.referee_id}` }),
    h("dl", { class: "kv" },
      h("dt", { text: "Status" }), h("dd", { id: "referral-status" }, badge(r.status)),
      h("dt", { text: "Code" }), h("dd", {}, link(`#/codes/${r.code_id}`, r.code)),
      h("dt", { text: "Referrer" }), h("dd", { class: "mono", text: r.referrer_id ?? "—" }),
      h("dt", { text: "Referee" }), h("dd", { class: "mono", text: r.referee_id }),
      h("dt", { text: "Campaign" }), h("dd", {}, r.campaign_id ? link(`#/campaigns/${r.campaign_id}`, r.campaign_id) : "—"),
      h("dt", { text: "Reason" }), h("dd", { text: r.reason ?? "—" }),
      h("dt", { text: "Created" }), h("dd", { text: when(r.created_at) }),
      h("dt", { text: "Converted" }), h("dd", { text: when(r.converted_at) ?? "—" }),
      h("dt", { text: "Verified" }), h("dd", { text: when(r.verified_at) ?? "—" }),
      h("dt", { text: "Rejected" }), h("dd", { text: when(r.rejected_at) ?? "—" }),
      h("dt", { text: "Metadata" }), h("dd", {}, h("pre", { class: "result", text: jsonText(r.metadata) }))),
    form("Change status", [
      field("New status", "status", { kind: "select", options: [["verified", "verified"], ["rejected", "rejected"]] }),
      field("Reason", "reason", { hint: "optional, kept with the referral" }),
    ], "Change status", async (f) => {
      const v = values(f);
      const saved = await api("PUT", `/v1/referral/referrals/${r.id}/status`, { body: { status: v.status, reason: v.reason || undefined } });
      show(saved);
      return saved;
    }));
  main.append(h("p", {}, link("#/referrals", "← All referrals")), body);
  show(await api("GET", `/v1/referral/referrals/${id}`));
}

async function list(main) {
  const listing = h("div");
  const box = errorBox();
  const filters = h("form", { class: "card", "aria-label": "Filter referrals" }, h("h2", { text: "Filter" }), h("div", { class: "fields" },
    field("Status", "status", { kind: "select", options: STATUSES }),
    field("Code", "code"),
    field("Referrer id", "referrer_id"),
    field("Referee id", "referee_id"),
    field("Campaign id", "campaign_id"),
    field("Created from", "created_from", { kind: "datetime" }),
    field("Created to", "created_to", { kind: "datetime" })),
    h("div", { class: "actions" }, h("button", { type: "submit", text: "Apply filters" })));
  const load = latest(async (offset = 0) => {
    try {
      const page = await api("GET", "/v1/referral/referrals", { query: { ...values(filters), offset, limit: 20 } });
      return () => {
        clear(box);
        clear(listing, table([
          { label: "Created", value: (r) => when(r.created_at) },
          { label: "Code", value: (r) => r.code, mono: true },
          { label: "Referrer", value: (r) => r.referrer_id, mono: true },
          { label: "Referee", value: (r) => r.referee_id, mono: true },
          { label: "Status", value: (r) => badge(r.status) },
          { label: "", value: (r) => link(`#/referrals/${r.id}`, `Open ${r.referee_id}`) },
        ], page.items, { empty: "No referrals match." }), pager(page, load));
      };
    } catch (err) { return () => showError(box, err, filters); }
  });
  filters.addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
  main.append(h("h1", { text: "Referrals" }), filters, box, listing);
  await load();
}

export default {
  id: "referrals",
  title: "Referrals",
  render: (main, [id]) => (id ? detail(main, id) : list(main)),
};
