/** base64url (RFC 4648 §5) decoding, as DoH queries and gost's target headers carry it. */

/** base64url without padding → bytes; undefined when invalid. */
export function b64urlDecode(s: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) return undefined;
  const std = s.replaceAll("-", "+").replaceAll("_", "/");
  try {
    return Uint8Array.from(
      atob(std + "=".repeat((4 - std.length % 4) % 4)),
      (c) => c.charCodeAt(0),
    );
  } catch {
    return undefined;
  }
}
