// The namespace picker: the namespaces holding secrets that the token may list secrets in, as the API
// reviewed them for it (GET /hsm/namespaces). Another namespace can still be typed (to create its first
// secret); the API decides whether the token may list it.

import * as api from "./api.js";
import { byId, el, fill } from "./dom.js";

/** What the API offers this token: {namespaces, complete, truncated, maxReviewed}. */
export async function load() {
  return (await api.call("GET", "/hsm/namespaces")).data;
}

/** The picker for found, `current` marked; choosing one calls onOpen(namespace). */
export function render(found, current, onOpen) {
  fill(byId("namespace-options"), found.namespaces.map((namespace) => el("option", { value: namespace })));
  fill(
    byId("namespace-choices"),
    found.namespaces.map((namespace) =>
      el(
        "li",
        {},
        el(
          "button",
          {
            type: "button",
            class: "chip",
            "data-namespace": namespace,
            "aria-current": namespace === current ? "true" : undefined,
            onclick: () => onOpen(namespace),
          },
          namespace,
        ),
      ),
    ),
  );
  const notes = [];
  if (!found.namespaces.length) {
    notes.push("Your token may list secrets in no namespace that holds any.");
  }
  if (found.truncated) {
    notes.push(`Only the first ${found.maxReviewed} namespaces holding secrets were checked.`);
  }
  if (!found.complete) {
    notes.push("A device did not answer, so a namespace may be missing.");
  }
  byId("namespace-notes").textContent = notes.join(" ");
}

/** current marked in the picker (after it was opened by typing or choosing). */
export function mark(current) {
  for (const button of byId("namespace-choices").querySelectorAll("button")) {
    if (button.dataset.namespace === current) {
      button.setAttribute("aria-current", "true");
    } else {
      button.removeAttribute("aria-current");
    }
  }
}

/** The picker emptied (signed out). */
export function clear() {
  fill(byId("namespace-options"));
  fill(byId("namespace-choices"));
  byId("namespace-notes").textContent = "";
}

/** The picker when the API could not say: typing still works. */
export function renderUnknown(message) {
  clear();
  byId("namespace-notes").textContent = `Could not list your namespaces (${message}); type one.`;
}
