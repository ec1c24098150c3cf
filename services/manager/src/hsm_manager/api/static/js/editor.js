// Creating and replacing a secret: a name and rows of key and value. Nothing is checked here: the API
// judges the request, and its message and the field it names are shown as they are.

import * as api from "./api.js";
import * as base64 from "./base64.js";
import { byId, el, fill } from "./dom.js";

let counter = 0;
let editing = null; // {namespace, path, version} of the secret being replaced, or {namespace} for a new one

function pairRow(key = "", encoded = null) {
  counter += 1;
  const id = `pair-${counter}`;
  const keyInput = el("input", { id: `${id}-key`, class: "pair-key", value: key, spellcheck: "false", autocomplete: "off" });
  const valueInput = el("textarea", { id: `${id}-value`, class: "pair-value", rows: "2", spellcheck: "false", autocomplete: "off" });
  const row = el(
    "li",
    { class: "pair", id },
    el("div", { class: "field" }, el("label", { for: keyInput.id }, "Key"), keyInput),
    el("div", { class: "field grow" }, el("label", { for: valueInput.id }, "Value"), valueInput),
  );
  if (encoded !== null) {
    // An existing value is kept as it is (bytes included) unless replaced: it is never shown here.
    row.dataset.kept = encoded;
    valueInput.hidden = true;
    const kept = el("p", { class: "kept", id: `${id}-kept` }, "Current value kept");
    const replace = el("button", { type: "button", class: "secondary" }, "Replace value");
    replace.addEventListener("click", () => {
      delete row.dataset.kept;
      kept.remove();
      replace.remove();
      valueInput.hidden = false;
      valueInput.focus();
    });
    valueInput.before(kept, replace);
  }
  const remove = el("button", { type: "button", class: "secondary", "aria-label": `Remove key ${key || "(new)"}` }, "Remove");
  remove.addEventListener("click", () => {
    const next = row.nextElementSibling ?? row.previousElementSibling;
    row.remove();
    (next?.querySelector("input") ?? byId("add-pair")).focus();
  });
  row.append(el("div", { class: "row-actions" }, remove));
  return row;
}

/** The form for a new secret in namespace. */
export function openNew(namespace) {
  editing = { namespace };
  byId("editor-title").textContent = `New secret in ${namespace}`;
  byId("name-field").hidden = false;
  byId("name-prefix").textContent = `${namespace}/`;
  byId("secret-name").value = "";
  fill(byId("pairs"), pairRow());
  clearInvalid();
  byId("secret-name").focus();
}

/** The form replacing secret (as read, with its version for If-Match). */
export function openExisting(namespace, secret) {
  editing = { namespace, path: secret.path, version: secret.version };
  byId("editor-title").textContent = `Edit ${secret.path} (version ${secret.version})`;
  byId("name-field").hidden = true;
  fill(byId("pairs"), Object.entries(secret.data).map(([key, encoded]) => pairRow(key, encoded)));
  clearInvalid();
  byId("pairs").querySelector("input")?.focus();
}

export function addPair() {
  const row = pairRow();
  byId("pairs").append(row);
  row.querySelector("input").focus();
}

/** Sends the form: resolves to {path, result} or rejects with ApiError. */
export async function save() {
  clearInvalid();
  const data = {};
  for (const row of byId("pairs").children) {
    const key = row.querySelector(".pair-key").value;
    const value = row.querySelector(".pair-value").value;
    if (!key && !value && row.dataset.kept === undefined) {
      continue; // an untouched empty row
    }
    data[key] = row.dataset.kept ?? base64.fromText(value);
  }
  if (editing.path) {
    const result = await api.call("PUT", api.secretRoute(editing.path), { body: { data }, ifMatch: editing.version });
    return { path: editing.path, result };
  }
  const path = `${editing.namespace}/${byId("secret-name").value}`;
  const result = await api.call("POST", api.secretRoute(path), { body: { data } });
  return { path, result };
}

function clearInvalid() {
  for (const input of byId("editor-form").querySelectorAll("[aria-invalid]")) {
    input.removeAttribute("aria-invalid");
    input.removeAttribute("aria-errormessage");
  }
}

/** Marks the input the API's field names (path, data.KEY, data) and focuses it; returns it or null. */
export function markField(field) {
  let input = null;
  if (field === "path") {
    input = byId("name-field").hidden ? null : byId("secret-name");
  } else if (field.startsWith("data.")) {
    const key = field.slice("data.".length);
    input = [...byId("pairs").querySelectorAll(".pair-key")].find((candidate) => candidate.value === key) ?? null;
  } else if (field === "data") {
    input = byId("pairs").querySelector(".pair-key");
  }
  if (input) {
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-errormessage", "alert-text");
    input.focus();
  }
  return input;
}
