// The secret list: a page of a namespace's secrets, each with what every device holds and whether they agree.

import * as api from "./api.js";
import { byId, el, fill, when } from "./dom.js";

const PAGE = 50;
// Versions are asked per secret; a few at a time keeps a refresh from flooding the API.
const PARALLEL = 4;

/** The first `shown` secrets of namespace (at least a page) and their state on every device. */
export async function load(namespace, device, shown) {
  const items = [];
  let next = null;
  let unavailable = [];
  do {
    const page = await api.call("GET", "/hsm/secrets", {
      query: { namespace, device, limit: PAGE, continue: next },
    });
    items.push(...page.data.items);
    unavailable = page.data.unavailableDevices;
    next = page.data.continue;
  } while (next && items.length < shown);
  const versions = new Map();
  const queue = [...items];
  async function worker() {
    for (let item = queue.shift(); item; item = queue.shift()) {
      try {
        const found = await api.call("GET", api.secretRoute(item.path, "/versions"), { query: { device } });
        versions.set(item.path, found.data);
      } catch (error) {
        // A 401 or 403 concerns the whole list; any other failure leaves this row without device state.
        if (error.status === 401 || error.status === 403) {
          throw error;
        }
      }
    }
  }
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  return { items, more: Boolean(next), unavailable, versions };
}

/** What the devices' copies say, in a word a person can act on. */
export function syncState(versions) {
  if (!versions) {
    return { text: "Unknown", tone: "unknown" };
  }
  if (versions.devices.some((device) => !device.available)) {
    return { text: "Device unreachable", tone: "warn" };
  }
  return versions.inSync ? { text: "In sync", tone: "ok" } : { text: "Out of sync", tone: "warn" };
}

/** A device's copy in a word: "v3", "deleted (v4)", "missing" or "unreachable". */
function copyState(device) {
  if (!device.available) {
    return "unreachable";
  }
  if (device.deleted) {
    return `deleted (v${device.version})`;
  }
  return device.present ? `v${device.version}` : "missing";
}

/** "hsm-a: v3" for a device's copy. */
function deviceCopy(device) {
  return `${device.device}: ${copyState(device)}`;
}

export function render(namespace, listed, onOpen) {
  const table = byId("secret-table");
  const state = byId("list-state");
  byId("list-title").textContent = `Secrets in ${namespace}`;
  byId("more-secrets").hidden = !listed.more;
  const notes = [];
  if (listed.unavailable.length) {
    notes.push(`Not answering: ${listed.unavailable.join(", ")}; the list shows what the other devices hold.`);
  }
  if (!listed.items.length) {
    table.hidden = true;
    state.textContent = [`No secrets in ${namespace} yet.`, ...notes].join(" ");
    fill(byId("secret-rows"));
    return;
  }
  table.hidden = false;
  state.textContent = [`${listed.items.length} secret${listed.items.length === 1 ? "" : "s"}.`, ...notes].join(" ");
  // Rows are kept from one refresh to the next, only their cells change: a focused row keeps the focus.
  const body = byId("secret-rows");
  const kept = new Map([...body.children].map((row) => [row.dataset.path, row]));
  const rows = listed.items.map((item) => {
    const row = kept.get(item.path) ?? newRow(namespace, item.path, onOpen);
    update(row, item, listed.versions.get(item.path));
    return row;
  });
  const unchanged = rows.length === body.children.length && rows.every((row, index) => body.children[index] === row);
  if (!unchanged) {
    fill(body, rows);
  }
}

function newRow(namespace, path, onOpen) {
  const name = path.slice(namespace.length + 1);
  return el(
    "tr",
    { "data-path": path },
    el("th", { scope: "row" }, el("button", { type: "button", class: "link", onclick: () => onOpen(path) }, name)),
    // The labels head the cells where the table is shown as cards (narrow windows).
    el("td", { "data-label": "Keys" }),
    el("td", { "data-label": "Version" }),
    el("td", { "data-label": "On each device" }),
    el("td", { "data-label": "State" }),
    el("td", { "data-label": "Updated" }),
  );
}

function update(row, item, versions) {
  const sync = syncState(versions);
  const [, keys, version, copies, state, updated] = row.children;
  keys.textContent = String(item.keys.length);
  version.textContent = `v${item.version}`;
  fill(copies, versions ? el("ul", { class: "copies" }, versions.devices.map((d) => el("li", {}, deviceCopy(d)))) : "—");
  fill(state, el("span", { class: `badge ${sync.tone}` }, sync.text));
  updated.textContent = when(item.updatedAt);
}
