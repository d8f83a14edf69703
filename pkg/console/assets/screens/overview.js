// Overview: referral stats by period with a chart, the funnel from impressions to successful
// referrals (§15), the leaderboard and recent referrals (§4.4).

import { api } from "../api.js";
import { h, latest, clear, field, values, table, badge, when, link, errorBox, showError } from "../ui.js";

const PERIODS = ["7d", "30d", "90d", "all"];
const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  el.append(...children);
  return el;
}

/** chart draws total and successful referrals per period as grouped bars. */
function chart(stats) {
  const W = 560, H = 220, top = 20, bottom = 30, left = 40;
  const max = Math.max(1, ...stats.map((s) => s.total_referrals));
  const band = (W - left) / stats.length, bar = Math.min(48, band / 3);
  const y = (v) => top + (H - top - bottom) * (1 - v / max);
  const g = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img",
    "aria-label": `Referrals by period: ${stats.map((s) => `${s.period} ${s.successful_referrals} of ${s.total_referrals} successful`).join("; ")}` });
  g.append(svg("line", { x1: left, x2: W, y1: y(0), y2: y(0), stroke: "#57606a" }));
  g.append(svg("text", { x: 4, y: y(max) + 4 }, String(max)), svg("text", { x: 4, y: y(0) }, "0"));
  stats.forEach((s, i) => {
    const x = left + i * band + band / 2 - bar;
    for (const [j, key, cls] of [[0, "total_referrals", "bar-total"], [1, "successful_referrals", "bar-successful"]]) {
      const v = s[key];
      g.append(svg("rect", { x: x + j * bar, y: y(v), width: bar - 2, height: y(0) - y(v), class: cls }, svg("title", {}, `${s.period}: ${v} ${key.split("_")[0]}`)));
      g.append(svg("text", { x: x + j * bar + 2, y: y(v) - 4 }, String(v)));
    }
    g.append(svg("text", { x: x + bar / 2, y: H - 10 }, s.period === "all" ? "all time" : `last ${s.period}`));
  });
  return h("figure", {}, g, h("figcaption", { class: "legend" },
    h("span", {}, h("span", { class: "sw total" }), "total"), h("span", {}, h("span", { class: "sw successful" }), "successful")));
}

/** share is part of whole as a percentage ("—" without a whole). */
const share = (part, whole) => (whole ? `${Math.round((1000 * part) / whole) / 10}%` : "—");

/** funnelChart draws the funnel's steps as horizontal bars, each with its share of the first. */
function funnelChart(f) {
  const steps = [["Impressions", f.impressions], ["Referrals", f.referrals], ["Linked to an impression", f.linked_referrals], ["Successful", f.successful_referrals]];
  const W = 560, row = 30, left = 170, max = Math.max(1, ...steps.map(([, v]) => v));
  const g = svg("svg", { viewBox: `0 0 ${W} ${row * steps.length}`, class: "chart funnel", role: "img",
    "aria-label": `Funnel (${f.period}): ${steps.map(([l, v]) => `${l} ${v}`).join(", ")}` });
  steps.forEach(([label, v], i) => {
    const w = ((W - left - 90) * v) / max;
    g.append(svg("text", { x: 0, y: i * row + 19 }, label),
      svg("rect", { x: left, y: i * row + 5, width: Math.max(w, 1), height: row - 10, class: i === 3 ? "bar-successful" : "bar-total" }),
      svg("text", { x: left + w + 6, y: i * row + 19 }, `${v}${i ? ` (${share(v, f.impressions)})` : ""}`));
  });
  return g;
}

/** funnel is the funnel section: its filters (period, campaign, code) and what it shows. */
function funnel() {
  const box = errorBox();
  const out = h("div", { id: "funnel" });
  const filters = h("form", { class: "card", "aria-label": "Funnel filters" }, h("div", { class: "fields" },
    field("Period", "period", { kind: "select", options: PERIODS.map((p) => [p, p]), value: "30d" }),
    field("Campaign id", "campaign_id"),
    field("Code", "code")),
    h("div", { class: "actions" }, h("button", { type: "submit", text: "Show funnel" })));
  const load = latest(async () => {
    try {
      const f = await api("GET", "/v1/referral/funnel", { query: values(filters) });
      return () => {
        clear(box);
        clear(out, funnelChart(f), table([
          { label: "Source", value: (s) => s.source ?? "none" },
          { label: "Impressions", value: (s) => s.impressions, num: true },
          { label: "Referrals", value: (s) => s.referrals, num: true },
          { label: "Successful", value: (s) => s.successful_referrals, num: true },
          { label: "Referrals per impression", value: (s) => share(s.referrals, s.impressions), num: true },
        ], f.by_source, { caption: "By source", empty: "No impressions in this period." }));
      };
    } catch (err) { return () => showError(box, err, filters); }
  });
  filters.addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
  return { section: h("section", { "aria-label": "Funnel" }, h("h2", { text: "Funnel" }), filters, box, out), load };
}

export default {
  id: "overview",
  title: "Overview",
  async render(main) {
    const stats = await Promise.all(PERIODS.map((period) => api("GET", "/v1/referral/stats", { query: { period } })));
    const period = h("select", { id: "lb-period" }, PERIODS.map((p) => h("option", { value: p, text: p })));
    period.value = "30d";
    const board = h("div");
    const loadBoard = latest(async () => {
      const lb = await api("GET", "/v1/referral/leaderboard", { query: { period: period.value, limit: 10 } });
      return () => clear(board, table([
        { label: "Rank", value: (r) => r.rank, num: true },
        { label: "User", value: (r) => r.user_id, mono: true },
        { label: "Successful", value: (r) => r.successful_referrals, num: true },
        { label: "Total", value: (r) => r.total_referrals, num: true },
      ], lb.items, { empty: "No referrals in this period." }));
    });
    period.addEventListener("change", loadBoard);
    const recent = await api("GET", "/v1/referral/referrals", { query: { limit: 10 } });
    const f = funnel();
    main.append(
      h("h1", { text: "Overview" }),
      h("h2", { text: "Referrals by period" }),
      chart(stats),
      table([
        { label: "Period", value: (s) => s.period },
        { label: "Total", value: (s) => s.total_referrals, num: true },
        { label: "Successful", value: (s) => s.successful_referrals, num: true },
        { label: "Pending", value: (s) => s.pending_referrals, num: true },
        { label: "Rejected", value: (s) => s.rejected_referrals, num: true },
        { label: "Conversion %", value: (s) => s.conversion_rate, num: true },
      ], stats, { caption: "Referrals created in each period" }),
      f.section,
      h("h2", { text: "Leaderboard" }),
      h("div", { class: "field" }, h("label", { for: "lb-period", text: "Period" }), period),
      board,
      h("h2", { text: "Recent referrals" }),
      table([
        { label: "Created", value: (r) => when(r.created_at) },
        { label: "Code", value: (r) => r.code, mono: true },
        { label: "Referrer", value: (r) => r.referrer_id, mono: true },
        { label: "Referee", value: (r) => r.referee_id, mono: true },
        { label: "Status", value: (r) => badge(r.status) },
        { label: "", value: (r) => link(`#/referrals/${r.id}`, "Open") },
      ], recent.items, { empty: "No referrals yet." }),
    );
    await Promise.all([loadBoard(), f.load()]);
  },
};
