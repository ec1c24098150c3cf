// Values travel base64-encoded; people type and read text.

/** The base64 of text's UTF-8 bytes. */
export function fromText(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const byte of bytes) {
    binary += String.fromCharCode(byte);
  }
  return btoa(binary);
}

/** The text a base64 value holds, or null when its bytes are not UTF-8 (a binary value). */
export function toText(encoded) {
  const binary = atob(encoded);
  const bytes = Uint8Array.from(binary, (char) => char.charCodeAt(0));
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}
