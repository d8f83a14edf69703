// Webhooks (§11): endpoints (create, edit, delete; the secret shown once on create and on
// rotation), a test event, replay, and the deliveries with their attempts and retry.

import { api } from "../api.js";
import { h, latest, clear, field, form, values, table, pager, badge, when, link, errorBox, showError, confirmButton } from "../ui.js";

const STATUSES = [["", "any"], ["pending", "pending"], ["delivered", "delivered"], ["failed", "failed"]];

/** types reads comma-separated event types (none: every type). */
const types = (s) => s.split(",").map((t) => t.trim()).filter(Boolean);

/** secretNote shows a secret the API will not show again. */
function secretNote(slot, e) {
  clear(slot, h("div", { class: "notice ok", role: "status", id: "webhook-secret" },
    h("p", { text: "The endpoint's signing secret. It is shown only now: keep it with the receiver." }),
    h("pre", { class: "result mono", text: e.secret })));
}

function endpointFields(e) {
  return [
    field("URL", "url", { value: e?.url, wide: true, hint: "https only (http to private addresses only when the operator allows them)" }),
    field("Description", "description", { value: e?.description }),
    field("Event types", "event_types", { value: e ? e.event_types.join(", ") : "", hint: "comma-separated, e.g. referral.created, payout.created; empty: every type" }),
    field("Active", "active", { kind: "checkbox", value: e ? e.active : true }),
  ];
}

const endpointBody = (f) => { const v = values(f); return { url: v.url, description: v.description, event_types: types(v.event_types), active: v.active }; };

/** attempts lists a delivery's attempts, newest last. */
function attempts(d) {
  return h("section", { "aria-label": `Attempts of ${d.event_type}`, id: "webhook-attempts" }, h("h3", { text: `Attempts of ${d.event_type} (${d.id})` }),
    table([
      { label: "At", value: (a) => when(a.at) },
      { label: "Status code", value: (a) => a.status_code, num: true },
      { label: "Duration (ms)", value: (a) => a.duration_ms, num: true },
      { label: "Error", value: (a) => a.error },
      { label: "Response", value: (a) => a.response_excerpt, mono: true },
    ], d.attempts, { empty: "No attempt yet." }));
}

async function detail(main, id) {
  let e = await api("GET", `/v1/webhooks/endpoints/${id}`);
  const box = errorBox();
  box.id = "webhook-error";
  const secretSlot = h("div");
  const note = h("p", { id: "webhook-action", role: "status", "aria-live": "polite" });
  const listing = h("div", { id: "webhook-deliveries" });
  const attemptsSlot = h("div");
  const status = h("select", { id: "delivery-status" }, STATUSES.map(([v, l]) => h("option", { value: v, text: l })));
  const act = async (fn) => { clear(box); clear(note); try { await fn(); } catch (err) { showError(box, err); } };
  const load = latest(async (offset = 0) => {
    const page = await api("GET", `/v1/webhooks/endpoints/${e.id}/deliveries`, { query: { status: status.value, offset, limit: 20 } });
    return () => clear(listing, table([
      { label: "Created", value: (d) => when(d.created_at) },
      { label: "Event", value: (d) => d.event_type, mono: true },
      { label: "Status", value: (d) => badge(d.status) },
      { label: "Attempts", value: (d) => d.attempts.length, num: true },
      { label: "Next attempt", value: (d) => when(d.next_attempt_at) },
      { label: "", value: (d) => h("span", { class: "actions" },
        h("button", { type: "button", text: "Attempts", "aria-label": `Show the attempts of ${d.event_type} ${d.id}`, onclick: () => clear(attemptsSlot, attempts(d)) }),
        h("button", { type: "button", text: "Retry", "aria-label": `Retry ${d.event_type} ${d.id}`, onclick: () => act(async () => {
          await api("POST", `/v1/webhooks/deliveries/${d.id}/retry`);
          note.textContent = `Retrying ${d.event_type}.`;
          await load();
        }) })) },
    ], page.items, { empty: "No deliveries." }), pager(page, load));
  });
  status.addEventListener("change", () => load());
  main.append(
    h("p", {}, link("#/webhooks", "← All endpoints")),
    h("h1", { text: `Webhook endpoint ${e.description || e.url}` }),
    h("dl", { class: "kv" },
      h("dt", { text: "URL" }), h("dd", { class: "mono", text: e.url }),
      h("dt", { text: "Status" }), h("dd", {}, badge(e.active ? "active" : "inactive")),
      h("dt", { text: "Event types" }), h("dd", { text: e.event_types.join(", ") || "every type" }),
      h("dt", { text: "Created" }), h("dd", { text: when(e.created_at) })),
    form("Edit endpoint", endpointFields(e), "Save endpoint", async (f) => {
      e = await api("PUT", `/v1/webhooks/endpoints/${e.id}`, { body: { ...e, ...endpointBody(f) } });
      return e;
    }, { done: "Saved the endpoint." }),
    h("div", { class: "actions" },
      h("button", { type: "button", id: "webhook-test", text: "Send a test event", onclick: () => act(async () => {
        await api("POST", `/v1/webhooks/endpoints/${e.id}/test`);
        note.textContent = "Sent a webhook.test event.";
        await load();
      }) }),
      confirmButton("Rotate secret", () => act(async () => {
        secretNote(secretSlot, await api("POST", `/v1/webhooks/endpoints/${e.id}/rotate-secret`));
        note.textContent = "Rotated: the previous secret also signs for 24 hours.";
      })),
      confirmButton("Delete endpoint", () => act(async () => {
        await api("DELETE", `/v1/webhooks/endpoints/${e.id}`);
        location.hash = "#/webhooks";
      }))),
    box, note, secretSlot,
    form("Replay events", [field("Since", "since", { kind: "datetime", hint: "re-sends the endpoint's events since then" })], "Replay", async (f) => {
      const r = await api("POST", `/v1/webhooks/endpoints/${e.id}/replay`, { body: { since: values(f).since } });
      await load();
      return r;
    }, { done: (r) => `Queued ${r.queued} event(s) since ${when(r.since)}.` }),
    h("h2", { text: "Deliveries" }),
    h("div", { class: "actions" }, h("label", { for: "delivery-status", text: "Show" }), status,
      h("button", { type: "button", id: "deliveries-refresh", text: "Refresh deliveries", onclick: () => load() })),
    listing, attemptsSlot);
  await load();
}

async function list(main) {
  const listing = h("div");
  const secretSlot = h("div");
  const load = latest(async (offset = 0) => {
    const page = await api("GET", "/v1/webhooks/endpoints", { query: { offset, limit: 20 } });
    return () => clear(listing, table([
      { label: "Endpoint", value: (e) => link(`#/webhooks/${e.id}`, e.description || e.url) },
      { label: "URL", value: (e) => e.url, mono: true },
      { label: "Event types", value: (e) => e.event_types.join(", ") || "every type" },
      { label: "Status", value: (e) => badge(e.active ? "active" : "inactive") },
    ], page.items, { empty: "No webhook endpoints yet." }), pager(page, load));
  });
  main.append(h("h1", { text: "Webhooks" }), listing,
    form("New endpoint", endpointFields(null), "Create endpoint", async (f) => {
      const created = await api("POST", "/v1/webhooks/endpoints", { body: endpointBody(f) });
      secretNote(secretSlot, created);
      await load();
      return created;
    }, { done: (e) => `Created the endpoint for ${e.url}.` }),
    secretSlot);
  await load();
}

export default {
  id: "webhooks",
  title: "Webhooks",
  render: (main, [id]) => (id ? detail(main, id) : list(main)),
};
