/**
 * IP literal helpers: parsing and canonical formatting of IPv4/IPv6 text (as Go prints them),
 * and unwrapping of IPv4-mapped IPv6 addresses, which dual-stack sockets report for IPv4 peers.
 */

/** Parses dotted-quad IPv4 text (no leading zeros, as Go's net.ParseIP); null if not one. */
export function parseIPv4(s: string): Uint8Array | null {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i];
    if (!/^(0|[1-9]\d{0,2})$/.test(p)) return null;
    const v = Number(p);
    if (v > 255) return null;
    out[i] = v;
  }
  return out;
}

/** Parses IPv6 text (with `::`, an embedded IPv4 tail, an optional `%zone`); null if not one. */
export function parseIPv6(s: string): Uint8Array | null {
  const pct = s.indexOf("%");
  if (pct >= 0) s = s.slice(0, pct);
  const lastColon = s.lastIndexOf(":");
  if (lastColon < 0) return null;
  let v4: Uint8Array | null = null;
  if (s.slice(lastColon + 1).includes(".")) {
    v4 = parseIPv4(s.slice(lastColon + 1));
    if (!v4) return null;
    // Stand two zero groups in for the IPv4 tail, then overwrite them below.
    s = s.slice(0, lastColon + 1) + "0:0";
  }
  const groupsOf = (part: string): number[] =>
    part === ""
      ? []
      : part.split(":").map((g) => /^[0-9a-fA-F]{1,4}$/.test(g) ? parseInt(g, 16) : NaN);
  let groups: number[];
  const dbl = s.indexOf("::");
  if (dbl >= 0) {
    if (s.indexOf("::", dbl + 1) >= 0) return null;
    const head = groupsOf(s.slice(0, dbl));
    const tail = groupsOf(s.slice(dbl + 2));
    if (head.length + tail.length > 7) return null;
    groups = [...head, ...new Array(8 - head.length - tail.length).fill(0), ...tail];
  } else {
    groups = groupsOf(s);
    if (groups.length !== 8) return null;
  }
  if (groups.some((g) => Number.isNaN(g))) return null;
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  if (v4) out.set(v4, 12);
  return out;
}

/** True when 16 bytes are an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`). */
export function isV4Mapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

/** Formats 4 bytes as dotted-quad text. */
export function formatIPv4(b: Uint8Array): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

/**
 * Formats 16 bytes as canonical IPv6 text (RFC 5952: lower case, longest zero run as `::`).
 * IPv4-mapped addresses come out as plain IPv4, as Go prints them.
 */
export function formatIPv6(b: Uint8Array): string {
  if (isV4Mapped(b)) return formatIPv4(b.subarray(12, 16));
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[2 * i] << 8) | b[2 * i + 1]);
  let bestStart = -1;
  let bestLen = 1; // a single zero group is not shortened (RFC 5952 §4.2.2)
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(":");
  if (bestStart < 0) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`;
}

/** The IP version of a literal (4 or 6), or 0 when `host` is not an IP literal. */
export function ipVersion(host: string): 0 | 4 | 6 {
  if (parseIPv4(host)) return 4;
  const v6 = parseIPv6(host);
  if (!v6) return 0;
  return isV4Mapped(v6) ? 4 : 6;
}

/**
 * Canonical text of an IP literal, with IPv4-mapped IPv6 unwrapped to IPv4 (dual-stack sockets
 * report IPv4 peers as `::ffff:a.b.c.d`); other strings are returned unchanged.
 */
export function normalizeIP(host: string): string {
  if (parseIPv4(host)) return host;
  const v6 = parseIPv6(host);
  return v6 ? formatIPv6(v6) : host;
}
