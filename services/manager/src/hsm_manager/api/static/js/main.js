// The console's screens and what moves between them: sign-in, the list (namespace, secrets, devices), one
// secret, the editor. The API has no push route, so what is shown is refreshed by polling while visible.

import * as api from "./api.js";
import * as devices from "./devices.js";
import { byId, el, fill } from "./dom.js";
import * as editor from "./editor.js";
import * as list from "./list.js";
import * as namespaces from "./namespaces.js";
import * as secret from "./secret.js";
import * as session from "./session.js";

const REFRESH_MS = 5000;
const SCREENS = ["sign-in", "list", "secret", "editor"];

const state = {
  screen: "sign-in",
  info: null, // /info when the token may read it (device names), else null
  namespace: "",
  device: "",
  shown: 0, // how many secrets the list shows (grows with "Show more")
  secret: null, // the secret on the secret screen, as read
  busy: false,
};

function show(screen) {
  // Values leave the page with the screen that showed them (the editor keeps kept values in its rows).
  if (screen !== "secret") {
    fill(byId("secret-values"));
  }
  if (screen !== "editor") {
    fill(byId("pairs"));
  }
  state.screen = screen;
  for (const name of SCREENS) {
    byId(`screen-${name}`).hidden = name !== screen;
  }
  byId("who").hidden = screen === "sign-in";
  const heading = byId(`screen-${screen}`).querySelector("h2");
  document.title = `${heading?.textContent || "HSM secrets"} · HSM secrets`;
}

function announce(message) {
  byId("notice").hidden = !message;
  byId("notice").textContent = message;
}

function alertUser(message) {
  byId("alert-text").textContent = message;
  byId("alert").hidden = !message;
}

/** What every failed call leads to: 401 signs out, 403 says what is not allowed, the rest is shown. */
function failed(error, what) {
  if (!(error instanceof api.ApiError)) {
    alertUser(`Something went wrong in the console: ${error.message}`);
    return;
  }
  if (error.status === 401) {
    signOut(`You were signed out: the API did not accept your token (${error.message}). Sign in again with a valid token.`);
    return;
  }
  if (error.status === 403) {
    alertUser(`Not allowed: your token may not ${what}. The API said: ${error.message}.`);
    return;
  }
  alertUser(`Could not ${what}: ${error.message}${error.field ? ` (field: ${error.field})` : ""}`);
}

function signOut(message) {
  session.signOut();
  Object.assign(state, { info: null, namespace: "", device: "", secret: null, shown: 0 });
  // Nothing of this token's namespace stays on the page for the next one.
  fill(byId("secret-rows"));
  byId("secret-table").hidden = true;
  byId("namespace").value = "";
  byId("list-title").textContent = "Secrets";
  byId("list-state").textContent = "";
  byId("refreshed").textContent = "";
  namespaces.clear();
  byId("token").value = "";
  show("sign-in");
  alertUser(message);
  announce("");
  byId("token").focus();
}

async function signIn(token) {
  session.signIn(token);
  try {
    const found = await api.call("GET", "/info");
    state.info = found.data;
    byId("who-name").textContent = `Signed in as ${found.data.user}`;
  } catch (error) {
    // 403: the token is valid (authentication comes first) but may not read the devices.
    if (error.status !== 403) {
      session.signOut();
      alertUser(
        error.status === 401
          ? `The API did not accept this token (${error.message}).`
          : `Could not sign in: ${error.message}`,
      );
      return;
    }
    state.info = null;
    byId("who-name").textContent = "Signed in";
  }
  alertUser("");
  enterList();
}

function enterList() {
  const names = state.info?.devices ?? [];
  byId("device-field").hidden = names.length < 2;
  fill(byId("device"), names.map((name) => el("option", { value: name }, name)));
  if (names.length > 1) {
    state.device = state.device || names[0];
    byId("device").value = state.device;
  }
  show("list");
  const last = state.namespace || session.namespaces()[0];
  if (last) {
    byId("namespace").value = last;
    openNamespace(last);
  } else {
    byId("namespace").focus();
  }
  refreshNamespaces();
  refreshDevices();
}

/** The picker from what the API says this token may list (asked again after a save or a delete). */
async function refreshNamespaces() {
  const asked = session.token();
  try {
    const found = await namespaces.load();
    // An answer for a token signed out meanwhile is not shown to the next one.
    if (session.token() === asked) {
      namespaces.render(found, state.namespace, pickNamespace);
    }
  } catch (error) {
    if (error.status === 401) {
      failed(error, "list your namespaces");
    } else if (session.token() === asked) {
      namespaces.renderUnknown(error.message);
    }
  }
}

function pickNamespace(namespace) {
  byId("namespace").value = namespace;
  openNamespace(namespace);
}

async function openNamespace(namespace) {
  alertUser("");
  state.namespace = "";
  byId("new-secret").disabled = true;
  state.shown = 0;
  const ok = await refreshList(namespace);
  if (ok) {
    state.namespace = namespace;
    session.rememberNamespace(namespace);
    byId("new-secret").disabled = false;
  }
  namespaces.mark(state.namespace);
}

async function refreshList(namespace = state.namespace) {
  if (!namespace) {
    return false;
  }
  const asked = session.token();
  try {
    const listed = await list.load(namespace, state.device, state.shown);
    // An answer for a token signed out meanwhile is not shown to the next one.
    if (session.token() !== asked) {
      return false;
    }
    state.shown = Math.max(state.shown, listed.items.length);
    list.render(namespace, listed, openSecret);
    byId("refreshed").textContent = `Updated ${new Date().toLocaleTimeString()}; refreshed every ${REFRESH_MS / 1000} s.`;
    return true;
  } catch (error) {
    if (session.token() !== asked) {
      return false;
    }
    if (namespace !== state.namespace || error.status === 401 || error.status === 403) {
      byId("secret-table").hidden = true;
      byId("list-title").textContent = "Secrets";
      byId("list-state").textContent = error.status === 403 ? `You may not list secrets in ${namespace}.` : "";
      byId("new-secret").disabled = true;
      byId("refreshed").textContent = "";
      state.namespace = "";
    }
    failed(error, `list the secrets of namespace ${namespace}`);
    return false;
  }
}

async function refreshDevices() {
  if (!state.info) {
    devices.renderForbidden("Sign in with a token that may get hsmdevices to see the devices' health.");
    return;
  }
  try {
    devices.render(await devices.load(state.info));
  } catch (error) {
    if (error.status === 403) {
      devices.renderForbidden(error.message);
      return;
    }
    failed(error, "read the devices' health");
  }
}

async function openSecret(path) {
  alertUser("");
  try {
    const found = await secret.load(path, state.device);
    state.secret = found.secret;
    show("secret");
    secret.render(found.secret, found.versions, announce);
    byId("secret-title").focus();
  } catch (error) {
    failed(error, `read ${path}`);
  }
}

async function refreshSecret() {
  try {
    secret.renderVersions(state.secret, await secret.loadVersions(state.secret.path, state.device));
  } catch (error) {
    failed(error, `read the state of ${state.secret.path}`);
  }
}

async function save() {
  alertUser("");
  try {
    const { path, result } = await editor.save();
    announce(
      result.partial
        ? `Saved ${path} as version ${result.data.version} on some devices only: ${result.message}.`
        : `Saved ${path} (version ${result.data.version}).`,
    );
    await openSecret(path);
    refreshNamespaces();
  } catch (error) {
    failed(error, "save the secret");
    if (error.field) {
      editor.markField(error.field);
    }
  }
}

async function remove() {
  const dialog = byId("delete-dialog");
  byId("delete-title").textContent = `Delete ${state.secret.path}?`;
  byId("delete-text").textContent =
    `Version ${state.secret.version} is deleted from every device. This cannot be undone.`;
  dialog.returnValue = "";
  dialog.showModal();
  await new Promise((resolve) => dialog.addEventListener("close", resolve, { once: true }));
  if (dialog.returnValue !== "delete") {
    byId("secret-delete").focus();
    return;
  }
  try {
    const path = state.secret.path;
    await api.call("DELETE", api.secretRoute(path), { query: { device: state.device }, ifMatch: state.secret.version });
    state.secret = null;
    await refreshList();
    show("list");
    announce(`Deleted ${path}.`);
    refreshNamespaces();
    byId("new-secret").focus();
  } catch (error) {
    failed(error, `delete ${state.secret.path}`);
  }
}

async function tick() {
  if (document.hidden || state.busy || !session.token()) {
    return;
  }
  state.busy = true;
  try {
    if (state.screen === "list") {
      await Promise.all([refreshList(), refreshDevices()]);
    } else if (state.screen === "secret" && state.secret) {
      await refreshSecret();
    }
  } finally {
    state.busy = false;
  }
}

function wire() {
  byId("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = byId("token").value.trim();
    if (token) {
      signIn(token);
    }
  });
  byId("sign-out").addEventListener("click", () => signOut("You signed out."));
  byId("alert-close").addEventListener("click", () => alertUser(""));
  byId("namespace-form").addEventListener("submit", (event) => {
    event.preventDefault();
    openNamespace(byId("namespace").value.trim());
  });
  byId("device").addEventListener("change", () => {
    state.device = byId("device").value;
    openNamespace(byId("namespace").value.trim());
  });
  byId("more-secrets").addEventListener("click", () => {
    state.shown += 50;
    refreshList();
  });
  byId("new-secret").addEventListener("click", () => {
    alertUser("");
    state.secret = null;
    show("editor");
    editor.openNew(state.namespace);
  });
  byId("secret-back").addEventListener("click", () => {
    show("list");
    refreshList();
  });
  byId("secret-reload").addEventListener("click", () => openSecret(state.secret.path));
  byId("secret-edit").addEventListener("click", () => {
    alertUser("");
    show("editor");
    editor.openExisting(state.namespace, state.secret);
  });
  byId("secret-delete").addEventListener("click", remove);
  byId("add-pair").addEventListener("click", editor.addPair);
  byId("editor-form").addEventListener("submit", (event) => {
    event.preventDefault();
    save();
  });
  for (const id of ["editor-back", "editor-cancel"]) {
    byId(id).addEventListener("click", () => {
      alertUser("");
      if (state.secret) {
        openSecret(state.secret.path);
      } else {
        show("list");
      }
    });
  }
  setInterval(tick, REFRESH_MS);
}

wire();
const stored = session.token();
if (stored) {
  signIn(stored);
} else {
  show("sign-in");
  byId("token").focus();
}
