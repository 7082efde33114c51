/** HTTP Basic credentials (RFC 7617) as carried in `Proxy-Authorization`. */

/** A user name and password. */
export interface BasicCredentials {
  username: string;
  password: string;
}

/**
 * Parses `Basic <base64(user:pass)>`. The scheme is case-insensitive; the decoded bytes are
 * UTF-8 and split at the first colon (so passwords may contain colons). Returns undefined for
 * a missing, non-Basic or malformed value.
 */
export function parseBasicAuth(value: string | undefined): BasicCredentials | undefined {
  if (!value) return undefined;
  const m = /^\s*basic\s+([A-Za-z0-9+/]+=*)\s*$/i.exec(value);
  if (!m) return undefined;
  let bin: string;
  try {
    bin = atob(m[1]);
  } catch {
    return undefined;
  }
  const text = new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
  const colon = text.indexOf(":");
  if (colon < 0) return undefined;
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** Builds a `Basic …` value (for tests and clients). */
export function basicAuthValue(username: string, password: string): string {
  const b = new TextEncoder().encode(`${username}:${password}`);
  return `Basic ${btoa(String.fromCharCode(...b))}`;
}
