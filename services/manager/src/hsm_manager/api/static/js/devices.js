// Per-device health and the state of each HSMDevice's pool, from /hsm/status and /hsm/info.

import * as api from "./api.js";
import { byId, el, fill } from "./dom.js";

/** Health and figures of every HSMDevice in info (from /info); a device's failure stays in its entry. */
export async function load(info) {
  return Promise.all(
    info.devices.map(async (name) => {
      const [status, figures] = await Promise.allSettled([
        api.call("GET", "/hsm/status", { query: { device: name } }),
        api.call("GET", "/hsm/info", { query: { device: name } }),
      ]);
      for (const answer of [status, figures]) {
        if (answer.status === "rejected" && [401, 403].includes(answer.reason.status)) {
          throw answer.reason;
        }
      }
      return {
        name,
        status: status.status === "fulfilled" ? status.value.data : null,
        error: status.status === "rejected" ? status.reason.message : "",
        info: figures.status === "fulfilled" ? figures.value.data : null,
      };
    }),
  );
}

/** The pool in a word: every device connected, some, or none. */
function poolState(status) {
  if (!status.totalDevices) {
    return { text: "No devices", tone: "warn" };
  }
  if (status.availableDevices === status.totalDevices) {
    return { text: `Ready: ${status.availableDevices} of ${status.totalDevices} connected`, tone: "ok" };
  }
  const tone = status.availableDevices ? "warn" : "bad";
  return { text: `Degraded: ${status.availableDevices} of ${status.totalDevices} connected`, tone };
}

function figuresOf(info, name) {
  const entry = info?.devices.find((device) => device.device === name);
  if (!entry?.available) {
    return "";
  }
  const parts = [`${entry.secretCount} secret${entry.secretCount === 1 ? "" : "s"}`];
  if (entry.capacity) {
    parts.push(`${entry.capacity.freeObjects} of ${entry.capacity.maxObjects} objects free`);
  }
  return parts.join(", ");
}

export function render(pools) {
  if (!pools.length) {
    fill(byId("devices"), el("p", { class: "help" }, "No HSMDevice has agents yet."));
    return;
  }
  fill(
    byId("devices"),
    pools.map((pool) => {
      if (!pool.status) {
        return el("div", { class: "pool" }, el("h3", {}, pool.name), el("p", { class: "badge bad" }, pool.error));
      }
      const state = poolState(pool.status);
      return el(
        "div",
        { class: "pool", "data-device": pool.name },
        el("h3", {}, pool.name),
        el("p", {}, el("span", { class: `badge ${state.tone}` }, state.text)),
        el(
          "ul",
          { class: "device-list" },
          pool.status.devices.map((device) =>
            el(
              "li",
              {},
              el("span", { class: `dot ${device.connected ? "ok" : "bad"}`, "aria-hidden": "true" }),
              el("strong", {}, device.device),
              ` ${device.connected ? "connected" : "not connected"} (${device.status})`,
              device.message ? el("span", { class: "help" }, ` ${device.message}`) : null,
              el("span", { class: "help figures" }, figuresOf(pool.info, device.device)),
            ),
          ),
        ),
      );
    }),
  );
}

/** The panel when the token may not read devices: say so, without signing out. */
export function renderForbidden(message) {
  fill(
    byId("devices"),
    el("p", { class: "help" }, "Your token may not read device health (it needs get on hsmdevices)."),
    el("p", { class: "help" }, message),
  );
}
