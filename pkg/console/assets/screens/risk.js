// The risk policy (§12): what a shared device, a shared address and a referrer's velocity do to
// an apply-code (allow, hold for review, reject).

import { api } from "../api.js";
import { h, clear, field, form, values, when } from "../ui.js";

const ACTIONS = [["allow", "allow"], ["hold", "hold for review"], ["reject", "reject"]];

/** summary is the policy in one sentence. */
function summary(p) {
  const v = p.velocity ? `a referrer with ${p.velocity.max_referrals} or more referral(s) in the last ${p.velocity.per_hours} h: ${p.velocity.action}` : "no velocity limit";
  return `${p.active ? "Active" : "Inactive"}. Same device: ${p.same_device}; same address within ${p.address_window_hours} h: ${p.same_address}; ${v}. ${p.updated_at ? `Changed ${when(p.updated_at)}.` : "The defaults (never changed)."}`;
}

export default {
  id: "risk",
  title: "Risk policy",
  async render(main) {
    let p = await api("GET", "/v1/referral/risk-policy");
    const section = h("section", { "aria-label": "Risk policy" });
    const render = () => clear(section,
      h("p", { class: "muted", id: "risk-state", text: summary(p) }),
      form("Change the risk policy", [
        field("Active", "active", { kind: "checkbox", value: p.active }),
        field("Same device", "same_device", { kind: "select", options: ACTIONS, value: p.same_device, hint: "a device id seen for the referee and the referrer" }),
        field("Same address", "same_address", { kind: "select", options: ACTIONS, value: p.same_address, hint: "an address seen for both within the window" }),
        field("Address window (hours)", "address_window_hours", { kind: "number", value: p.address_window_hours, hint: "1–720" }),
        field("Velocity limit", "velocity_on", { kind: "checkbox", value: !!p.velocity }),
        field("Max referrals", "velocity.max_referrals", { kind: "number", value: p.velocity?.max_referrals ?? 10, hint: "a referrer's referrals already created in the period" }),
        field("Per hours", "velocity.per_hours", { kind: "number", value: p.velocity?.per_hours ?? 24, hint: "1–720" }),
        field("Velocity action", "velocity.action", { kind: "select", options: ACTIONS, value: p.velocity?.action ?? "hold" }),
      ], "Save risk policy", async (f) => {
        const v = values(f);
        const velocity = v.velocity_on ? { max_referrals: v["velocity.max_referrals"], per_hours: v["velocity.per_hours"], action: v["velocity.action"] } : null;
        p = await api("PUT", "/v1/referral/risk-policy", { body: { active: v.active, same_device: v.same_device, same_address: v.same_address,
          address_window_hours: v.address_window_hours, velocity } });
        render();
        return p;
      }));
    render();
    main.append(h("h1", { text: "Risk policy" }),
      h("p", { text: "Decides what happens at apply-code when a referral looks like one person on both sides. Held referrals wait in the review queue on the Referrals screen, earning nothing until approved." }),
      section);
  },
};
