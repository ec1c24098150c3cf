// Every HSMDevice's pool as the operator reports it in its HSMPool (phase, device counts, conditions, from
// /hsm/pools) and each device's health and figures as its agent reports them (/hsm/status, /hsm/info).

import * as api from "./api.js";
import { byId, el, fill } from "./dom.js";

/** Tone of each HSMPool phase: Ready is fine, Error needs someone, the others wait or are partly there. */
const PHASE_TONES = { Ready: "ok", Partial: "warn", Pending: "warn", Aggregating: "warn", Error: "bad" };

/** The pools (or why they could not be read) and the health and figures of every HSMDevice with agents
 * (from /info); a device's failure stays in its entry, a 401 or 403 rejects. */
export async function load(info) {
  const [pools, devices] = await Promise.all([
    loadPools(),
    Promise.all(
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
    ),
  ]);
  return { pools, devices };
}

async function loadPools() {
  try {
    return { items: (await api.call("GET", "/hsm/pools")).data.pools, error: "" };
  } catch (error) {
    if ([401, 403].includes(error.status)) {
      throw error;
    }
    return { items: null, error: error.message };
  }
}

/** The HSMPool's state in a word, with its tone. */
function poolState(pool, pools) {
  if (!pools.items) {
    return { text: `Pool state unknown: ${pools.error}`, tone: "unknown" };
  }
  if (!pool) {
    return { text: "No HSMPool yet", tone: "warn" };
  }
  if (pool.error) {
    return { text: `Pool status unreadable: ${pool.error}`, tone: "bad" };
  }
  if (!pool.phase) {
    return { text: "Pool not aggregated yet", tone: "warn" };
  }
  const counts = pool.totalDevices ? `: ${pool.availableDevices} of ${pool.totalDevices} devices available` : "";
  return { text: `Pool ${pool.phase}${counts}`, tone: PHASE_TONES[pool.phase] ?? "unknown" };
}

/** The agents in a line: how many answer as connected. */
function agentsLine(device) {
  if (!device) {
    return "No agent of this HSMDevice is Ready.";
  }
  if (!device.status) {
    return `Agents not reachable: ${device.error}`;
  }
  return `Agents: ${device.status.availableDevices} of ${device.status.totalDevices} connected`;
}

function conditionText(condition) {
  const reason = condition.reason ? ` (${condition.reason})` : "";
  const message = condition.message ? `: ${condition.message}` : "";
  return `${condition.type} ${condition.status}${reason}${message}`;
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

export function render({ pools, devices }) {
  const byName = new Map(devices.map((device) => [device.name, device]));
  const poolOf = new Map((pools.items ?? []).map((pool) => [pool.hsmDevice, pool]));
  const names = [...new Set([...byName.keys(), ...poolOf.keys()])].sort();
  if (!names.length) {
    fill(byId("devices"), el("p", { class: "help" }, "No HSMDevice has a pool or agents yet."));
    return;
  }
  fill(
    byId("devices"),
    names.map((name) => {
      const device = byName.get(name);
      const pool = poolOf.get(name);
      const state = poolState(pool, pools);
      return el(
        "div",
        { class: "pool", "data-device": name },
        el("h3", {}, name),
        el("p", {}, el("span", { class: `badge ${state.tone}`, "data-pool-phase": pool?.phase ?? "" }, state.text)),
        pool?.conditions.length
          ? el(
              "ul",
              { class: "conditions", "aria-label": `Conditions of ${pool.name}` },
              pool.conditions.map((condition) =>
                el("li", { "data-condition": condition.type }, conditionText(condition)),
              ),
            )
          : null,
        el("p", { class: "agents" }, agentsLine(device)),
        device?.status
          ? el(
              "ul",
              { class: "device-list" },
              device.status.devices.map((entry) =>
                el(
                  "li",
                  {},
                  el("span", { class: `dot ${entry.connected ? "ok" : "bad"}`, "aria-hidden": "true" }),
                  el("strong", {}, entry.device),
                  ` ${entry.connected ? "connected" : "not connected"} (${entry.status})`,
                  entry.message ? el("span", { class: "help" }, ` ${entry.message}`) : null,
                  el("span", { class: "help figures" }, figuresOf(device.info, entry.device)),
                ),
              ),
            )
          : null,
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
