// Overview: referral stats by period with a chart, the leaderboard and recent referrals (§4.4).

import { api } from "../api.js";
import { h, latest, clear, table, badge, when, link } from "../ui.js";

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
    await loadBoard();
  },
};
