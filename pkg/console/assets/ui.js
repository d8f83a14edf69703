// Small DOM helpers shared by the screens: elements, labelled fields with their error slots,
// the error display, tables, pagers and CSV export. No inline script or style: the page's
// Content-Security-Policy forbids both.

import { ApiError } from "./api.js";

/** h creates an element: props are attributes, except on* (listeners) and text. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else if (k === "value") el.value = v;
    else if (k === "checked") el.checked = !!v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** clear empties an element and fills it with children. */
export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let seq = 0;

/**
 * field is a labelled control with its hint and error slot. name is the API field it edits
 * (field errors whose key starts with it are shown here). kind: text, number, datetime,
 * checkbox, select (options: [[value, label]]), textarea, json.
 */
export function field(label, name, { kind = "text", value, hint, options, wide, required, placeholder } = {}) {
  const id = `f${++seq}`;
  let control;
  if (kind === "select") {
    control = h("select", { id, name }, (options || []).map(([v, l]) => h("option", { value: v, text: l })));
    if (value !== undefined && value !== null) control.value = value;
  } else if (kind === "textarea" || kind === "json") {
    control = h("textarea", { id, name, spellcheck: "false", placeholder });
    control.value = kind === "json" && value !== undefined ? jsonText(value) : value ?? "";
  } else if (kind === "checkbox") {
    control = h("input", { id, name, type: "checkbox", checked: !!value });
  } else {
    const type = kind === "datetime" ? "datetime-local" : kind;
    control = h("input", { id, name, type, required, placeholder, step: kind === "number" ? "any" : null });
    control.value = kind === "datetime" ? toLocalInput(value) : value ?? "";
  }
  const err = h("p", { class: "field-error", id: `${id}-error` });
  control.setAttribute("aria-describedby", `${id}-error${hint ? ` ${id}-hint` : ""}`);
  const wrap = h("div", { class: `field${kind === "checkbox" ? " check" : ""}${wide || kind === "json" || kind === "textarea" ? " wide" : ""}`, "data-field": name },
    kind === "checkbox" ? [control, h("label", { for: id, text: label })] : [h("label", { for: id, text: label }), control],
    hint ? h("span", { class: "hint", id: `${id}-hint`, text: hint }) : null, err);
  wrap.control = control;
  return wrap;
}

/** values reads a form's fields by name, typed by their kind. */
export function values(form) {
  const out = {};
  for (const el of form.querySelectorAll("[name]")) {
    if (el.type === "checkbox") out[el.name] = el.checked;
    else if (el.type === "number") out[el.name] = el.value === "" ? null : Number(el.value);
    else if (el.type === "datetime-local") out[el.name] = el.value === "" ? null : new Date(el.value).toISOString();
    else out[el.name] = el.value.trim();
  }
  return out;
}

/** parseJSON reads a JSON field (empty → fallback), reporting a syntax error on that field. */
export function parseJSON(form, name, fallback = null) {
  const el = form.querySelector(`[name="${name}"]`);
  const text = el.value.trim();
  if (text === "") return fallback;
  try { return JSON.parse(text); } catch (e) {
    throw new ApiError(400, { error: { code: "INVALID_JSON", message: `${name} is not valid JSON`, fields: { [name]: e.message } } });
  }
}

/** errorBox is a live region where a form or screen shows an error or a success note. */
export function errorBox() { return h("div", { class: "notice error", role: "alert", "aria-live": "assertive" }); }

/** okBox is a live region for success notes. */
function okBox() { return h("div", { class: "notice ok", role: "status", "aria-live": "polite" }); }

/** showError shows err in box and, for a validation error, each field's reason next to it. */
export function showError(box, err, form) {
  if (form) clearErrors(form);
  const code = err instanceof ApiError ? err.code : "ERROR";
  clear(box, h("span", { class: "error-code", text: code }), err.message);
  const unplaced = [];
  for (const [key, reason] of Object.entries((err && err.fields) || {})) {
    const slot = form && fieldFor(form, key);
    if (slot) {
      slot.classList.add("invalid");
      slot.control && slot.control.setAttribute("aria-invalid", "true");
      const p = slot.querySelector(".field-error");
      p.textContent = p.textContent ? `${p.textContent}; ${label(key, slot)}${reason}` : `${label(key, slot)}${reason}`;
    } else unplaced.push(`${key}: ${reason}`);
  }
  if (unplaced.length) box.append(h("ul", {}, unplaced.map((u) => h("li", { text: u }))));
  const first = form && form.querySelector("[aria-invalid=true]");
  if (first) first.focus(); else box.focus?.();
}

function label(key, slot) { return key === slot.dataset.field ? "" : `${key}: `; }

/** fieldFor finds the field a field error belongs to: the longest name that prefixes key. */
function fieldFor(form, key) {
  let best = null;
  for (const slot of form.querySelectorAll("[data-field]")) {
    const n = slot.dataset.field;
    if ((key === n || key.startsWith(`${n}.`) || key.startsWith(`${n}[`)) && (!best || n.length > best.dataset.field.length)) best = slot;
  }
  return best;
}

/** clearErrors removes the field errors of a form. */
function clearErrors(form) {
  for (const slot of form.querySelectorAll(".field.invalid")) {
    slot.classList.remove("invalid");
    slot.control && slot.control.removeAttribute("aria-invalid");
  }
  for (const p of form.querySelectorAll(".field-error")) p.textContent = "";
}

/**
 * form builds a card form whose submit runs action(form); errors are shown in its box, and
 * done (when given) is shown as a success note.
 */
export function form(title, fields, submitLabel, action, { done } = {}) {
  const box = errorBox();
  const ok = okBox();
  const button = h("button", { type: "submit", class: "primary", text: submitLabel });
  const f = h("form", { class: "card", novalidate: true, "aria-label": title },
    h("h2", { text: title }), h("div", { class: "fields" }, fields), box, ok, h("div", { class: "actions" }, button));
  f.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clear(box); clear(ok); clearErrors(f);
    button.disabled = true;
    try {
      const result = await action(f);
      if (done) ok.textContent = typeof done === "function" ? done(result) : done;
    } catch (err) {
      showError(box, err, f);
    } finally {
      button.disabled = false;
    }
  });
  return f;
}

/** table renders rows under columns [{label, value(row) → string|Node, num?}]. */
export function table(columns, rows, { caption, empty = "Nothing here yet." } = {}) {
  if (!rows.length) return h("p", { class: "muted", text: empty });
  return h("div", { class: "table-wrap" }, h("table", {},
    caption ? h("caption", { class: "muted", text: caption }) : null,
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.num ? "num" : null, text: c.label })))),
    h("tbody", {}, rows.map((r) => h("tr", {}, columns.map((c) => {
      const v = c.value(r);
      return h("td", { class: c.num ? "num" : c.mono ? "mono" : null }, v === null || v === undefined ? "—" : v);
    }))))));
}

/** pager shows "offset–end of total" with previous/next buttons calling go(offset). */
export function pager(page, go) {
  const end = page.offset + page.items.length;
  return h("div", { class: "pager" },
    h("button", { type: "button", text: "Previous", disabled: page.offset === 0, onclick: () => go(Math.max(0, page.offset - page.limit)) }),
    h("span", { text: page.total ? `${page.offset + 1}–${end} of ${page.total}` : "0 of 0" }),
    h("button", { type: "button", text: "Next", disabled: end >= page.total, onclick: () => go(page.offset + page.limit) }));
}

/** badge shows a status word. */
export function badge(s) { return h("span", { class: `badge ${s}`, text: s }); }

/** link is an in-console link. */
export function link(hash, text) { return h("a", { href: hash, text }); }

/** when formats an RFC 3339 time for reading (UTC, to the second). */
export function when(t) { return t ? t.replace("T", " ").replace(/\.\d+Z$/, "Z").replace("Z", " UTC") : null; }

/** wallet formats reward lines: "100 points, 50 EUR". */
export function wallet(r) { return (r && r.wallet && r.wallet.length) ? r.wallet.map((w) => `${w.amount} ${w.currency_id}`).join(", ") : "nothing"; }

/** jsonText pretty-prints a value (empty for null). */
export function jsonText(v) { return v === null || v === undefined ? "" : JSON.stringify(v, null, 2); }

function toLocalInput(t) {
  if (!t) return "";
  const d = new Date(t);
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** csvCell quotes a CSV cell and defuses spreadsheet formulas (a leading = + - @). */
export function csvCell(v) {
  let s = v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v);
  if (/^[=+\-@\t\r]/.test(s) && !/^-?\d+(\.\d+)?$/.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** download saves rows as a CSV file with the given columns (keys of each row). */
export function downloadCSV(name, keys, rows) {
  const text = [keys.join(","), ...rows.map((r) => keys.map((k) => csvCell(r[k])).join(","))].join("\r\n") + "\r\n";
  const a = h("a", { href: URL.createObjectURL(new Blob([text], { type: "text/csv" })), download: name });
  document.body.append(a);
  a.click();
  a.remove();
  return text;
}

/** confirmButton is a delete button that asks once more on the button itself (no dialog). */
export function confirmButton(label, action) {
  const b = h("button", { type: "button", class: "danger", text: label });
  let armed = false;
  b.addEventListener("click", async () => {
    if (!armed) { armed = true; b.textContent = `Confirm: ${label.toLowerCase()}`; return; }
    b.disabled = true;
    try { await action(); } finally { b.disabled = false; armed = false; b.textContent = label; }
  });
  b.addEventListener("blur", () => { armed = false; b.textContent = label; });
  return b;
}

/**
 * latest makes a loader whose answers may arrive out of order safe: step fetches and returns
 * the function that shows what it fetched, and only the last call's is run (a list reloaded
 * after a write is not overwritten by the slower first load).
 */
export function latest(step) {
  let calls = 0;
  return async (...args) => {
    const mine = ++calls;
    const show = await step(...args);
    if (mine === calls) show();
  };
}
