// Referrals (§4.4, §12): the review queue of held referrals, filters, a referral's detail, its
// status changes and its review.

import { api } from "../api.js";
import { h, latest, clear, field, form, values, table, pager, badge, when, link, errorBox, showError, jsonText } from "../ui.js";

const STATUSES = [["", "any"], ["pending", "pending"], ["converted", "converted"], ["verified", "verified"], ["rejected", "rejected"]];
const REVIEWS = [["", "any"], ["held", "held"], ["approved", "approved"], ["rejected", "rejected"]];

/** reasons names what held a referral: "same_device, velocity". */
const reasons = (r) => (r.review ? r.review.reasons.join(", ") : null);

/** reviewForm approves or rejects a held referral with a note; done gets the saved referral. */
function reviewForm(r, done) {
  return form(`Review ${r.referee_id}`, [
    field("Decision", "decision", { kind: "select", options: [["approve", "approve"], ["reject", "reject"]] }),
    field("Note", "note", { hint: "optional, kept with the review" }),
  ], "Save review", async (f) => {
    const v = values(f);
    const saved = await api("PUT", `/v1/referral/referrals/${r.id}/review`, { body: { decision: v.decision, note: v.note || undefined } });
    await done(saved);
    return saved;
  }, { done: (s) => `Referral of ${s.referee_id} ${s.review.state}.` });
}

/** reviewFacts are the detail's lines about a referral's risk review. */
function reviewFacts(r) {
  const rv = r.review;
  if (!rv) return [h("dt", { text: "Review" }), h("dd", { id: "referral-review", text: "none (risk let it through)" })];
  return [
    h("dt", { text: "Review" }), h("dd", { id: "referral-review" }, badge(rv.state), ` held for ${rv.reasons.join(", ")}`),
    h("dt", { text: "Review note" }), h("dd", { text: rv.note ?? "—" }),
    h("dt", { text: "Reviewed" }), h("dd", { text: when(rv.reviewed_at) ?? "—" }),
  ];
}

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
      h("dt", { text: "Metadata" }), h("dd", {}, h("pre", { class: "result", text: jsonText(r.metadata) })),
      reviewFacts(r)),
    r.review && r.review.state === "held" ? reviewForm(r, show) : null,
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
    field("Review", "review", { kind: "select", options: REVIEWS }),
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
          { label: "Review", value: (r) => (r.review ? badge(r.review.state) : null) },
          { label: "", value: (r) => link(`#/referrals/${r.id}`, `Open ${r.referee_id}`) },
        ], page.items, { empty: "No referrals match." }), pager(page, load));
      };
    } catch (err) { return () => showError(box, err, filters); }
  });
  filters.addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
  const queue = reviewQueue(() => load());
  main.append(h("h1", { text: "Referrals" }), queue.section, filters, box, listing);
  await Promise.all([queue.load(), load()]);
}

/**
 * reviewQueue lists the held referrals with their reasons; a row's Review
 * button opens the decision form under the queue, and a decision reloads the queue and, through
 * changed, the list below.
 */
function reviewQueue(changed) {
  const listing = h("div");
  const formSlot = h("div");
  const section = h("section", { "aria-label": "Review queue" }, h("h2", { text: "Review queue" }), listing, formSlot);
  const load = latest(async (offset = 0) => {
    const page = await api("GET", "/v1/referral/referrals", { query: { review: "held", offset, limit: 20 } });
    return () => clear(listing, table([
      { label: "Created", value: (r) => when(r.created_at) },
      { label: "Code", value: (r) => r.code, mono: true },
      { label: "Referrer", value: (r) => r.referrer_id, mono: true },
      { label: "Referee", value: (r) => r.referee_id, mono: true },
      { label: "Held for", value: reasons },
      { label: "", value: (r) => h("span", { class: "actions" },
        h("button", { type: "button", text: "Review", "aria-label": `Review ${r.referee_id}`, onclick: () => {
          const f = reviewForm(r, async () => { clear(formSlot, h("p", { class: "notice ok", role: "status", text: `Referral of ${r.referee_id} reviewed.` })); await Promise.all([load(), changed()]); });
          clear(formSlot, f);
          f.querySelector("select").focus();
        } }),
        link(`#/referrals/${r.id}`, `Open ${r.referee_id}`)) },
    ], page.items, { empty: "No referrals are held for review." }), page.total > page.items.length ? pager(page, load) : null);
  });
  return { section, load };
}

export default {
  id: "referrals",
  title: "Referrals",
  render: (main, [id]) => (id ? detail(main, id) : list(main)),
};
