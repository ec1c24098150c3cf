// One secret: its keys with values masked until revealed, copy buttons, and what every device holds.

import * as api from "./api.js";
import * as base64 from "./base64.js";
import { byId, el, fill, when } from "./dom.js";
import * as list from "./list.js";

const MASK = "••••••••";

/** The secret at path (newest copy) and its state on every device. */
export async function load(path, device) {
  const [secret, versions] = await Promise.all([
    api.call("GET", api.secretRoute(path), { query: { device } }),
    api.call("GET", api.secretRoute(path, "/versions"), { query: { device } }),
  ]);
  return { secret: secret.data, versions: versions.data };
}

/** Only the devices' state (the periodic refresh: values are read again only when asked). */
export async function loadVersions(path, device) {
  return (await api.call("GET", api.secretRoute(path, "/versions"), { query: { device } })).data;
}

async function copy(text, button, announce) {
  try {
    await navigator.clipboard.writeText(text);
    announce(`Copied the value of ${button.dataset.key}.`);
  } catch {
    announce(`Copying is not allowed here; reveal the value of ${button.dataset.key} and copy it by hand.`);
  }
}

function valueRow(key, encoded, announce) {
  const text = base64.toText(encoded);
  const shown = text ?? encoded;
  const value = el("code", { class: "value masked", id: `value-${key}`, "aria-label": `value of ${key}, hidden` }, MASK);
  const reveal = el("button", { type: "button", class: "secondary", "aria-pressed": "false", "aria-controls": value.id }, "Reveal");
  reveal.addEventListener("click", () => {
    const hidden = reveal.getAttribute("aria-pressed") === "false";
    reveal.setAttribute("aria-pressed", String(hidden));
    reveal.textContent = hidden ? "Hide" : "Reveal";
    value.textContent = hidden ? shown : MASK;
    value.classList.toggle("masked", !hidden);
    value.setAttribute("aria-label", `value of ${key}${hidden ? "" : ", hidden"}`);
  });
  const copyButton = el("button", { type: "button", class: "secondary", "data-key": key }, "Copy");
  copyButton.addEventListener("click", () => copy(shown, copyButton, announce));
  return el(
    "li",
    { "data-key": key },
    el("div", { class: "key" }, el("strong", {}, key), text === null ? el("span", { class: "help" }, " binary, shown as base64") : null),
    value,
    el("div", { class: "row-actions" }, reveal, copyButton),
  );
}

export function render(secret, versions, announce) {
  byId("secret-title").textContent = secret.path;
  byId("secret-newer").hidden = true;
  const description = secret.metadata?.description ? ` ${secret.metadata.description}` : "";
  byId("secret-summary").textContent = `Version ${secret.version}, read from ${secret.device}.${description}`;
  fill(
    byId("secret-values"),
    Object.entries(secret.data).map(([key, encoded]) => valueRow(key, encoded, announce)),
  );
  renderVersions(secret, versions);
}

/** The devices' table, and a note when a newer version than the one shown exists. */
export function renderVersions(secret, versions) {
  const sync = list.syncState(versions);
  fill(
    byId("secret-devices"),
    versions.devices.map((device) =>
      el(
        "tr",
        {},
        el("th", { scope: "row" }, device.device),
        el("td", {}, device.available && device.version ? `v${device.version}` : "—"),
        el("td", {}, device.available ? (device.deleted ? "deleted" : device.present ? "present" : "missing") : "unreachable"),
        el("td", {}, when(device.updatedAt)),
        el("td", {}, device.writer ?? ""),
      ),
    ),
  );
  fill(byId("secret-sync"), el("span", { class: `badge ${sync.tone}` }, sync.text));
  const newer = versions.newestVersion > secret.version;
  byId("secret-newer").hidden = !newer;
  if (newer) {
    byId("secret-newer-text").textContent = `Version ${versions.newestVersion} was written since you opened this one.`;
  }
}
