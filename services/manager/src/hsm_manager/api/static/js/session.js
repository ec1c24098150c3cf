// What the console remembers: in sessionStorage only, so it lives as long as the tab and is never sent
// anywhere by the browser itself (a cookie would be, and a URL ends up in histories and logs).

const TOKEN = "hsm-console.token";
const NAMESPACES = "hsm-console.namespaces";
const MAX_NAMESPACES = 20;

export function token() {
  return sessionStorage.getItem(TOKEN);
}

export function signIn(value) {
  // The namespaces another token opened are not this one's to be shown.
  if (sessionStorage.getItem(TOKEN) !== value) {
    sessionStorage.removeItem(NAMESPACES);
  }
  sessionStorage.setItem(TOKEN, value);
}

export function signOut() {
  sessionStorage.removeItem(TOKEN);
  sessionStorage.removeItem(NAMESPACES);
}

/** Namespaces the token listed in this tab, most recent first. */
export function namespaces() {
  try {
    const stored = JSON.parse(sessionStorage.getItem(NAMESPACES) ?? "[]");
    return Array.isArray(stored) ? stored.filter((item) => typeof item === "string") : [];
  } catch {
    return [];
  }
}

export function rememberNamespace(namespace) {
  const kept = [namespace, ...namespaces().filter((item) => item !== namespace)].slice(0, MAX_NAMESPACES);
  sessionStorage.setItem(NAMESPACES, JSON.stringify(kept));
}
