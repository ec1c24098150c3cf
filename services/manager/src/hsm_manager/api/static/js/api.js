// The REST API as the console calls it: bearer token, JSON envelope, errors as ApiError.

import * as session from "./session.js";

const BASE = "/api/v1";

/** A failed call: the HTTP status (0: no answer), the API's code, message and the field it names. */
export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

/** Calls the API; resolves to {data, status, etag, partial, message} or rejects with ApiError. */
export async function call(method, route, { query = {}, body, ifMatch } = {}) {
  const headers = { Authorization: `Bearer ${session.token()}`, Accept: "application/json" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
  }
  if (ifMatch !== undefined) {
    headers["If-Match"] = `"${ifMatch}"`;
  }
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") {
      search.set(name, value);
    }
  }
  const encoded = search.toString();
  const url = `${BASE}${route}${encoded ? `?${encoded}` : ""}`;
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
      referrerPolicy: "no-referrer",
    });
  } catch {
    throw new ApiError(0, "UNREACHABLE", "The API did not answer. Check your connection; the console keeps trying.", "");
  }
  let envelope = null;
  try {
    envelope = await response.json();
  } catch {
    throw new ApiError(response.status, "INTERNAL", `The API answered ${response.status} without a readable body.`, "");
  }
  const error = envelope?.error ?? null;
  // 207: the write reached some devices only; it happened, and the repair brings the others along.
  if (response.ok && (envelope.success || response.status === 207)) {
    return {
      data: envelope.data,
      status: response.status,
      etag: response.headers.get("ETag"),
      partial: response.status === 207,
      message: error?.message ?? "",
    };
  }
  throw new ApiError(
    response.status,
    error?.code ?? "INTERNAL",
    error?.message ?? `The API answered ${response.status}.`,
    error?.details?.field ?? "",
  );
}

/** The API route of a secret path, each segment escaped. */
export function secretRoute(path, suffix = "") {
  return `/hsm/secrets/${path.split("/").map(encodeURIComponent).join("/")}${suffix}`;
}
