/**
 * The DNS proxy's upstreams, reached through the service's router (so through its chain when it
 * has one, as gost's exchanger dials via its router): UDP over `router.dialUDP` (the chain's last
 * hop must carry UDP), TCP and DoT as streams over `router.dial`, DoH as an HTTP/1.1 POST
 * (RFC 8484) over TLS over `router.dial`. Specs are those of the resolver (`udp://ip:53`,
 * `tcp://…`, `tls://`/`dot://ip:853`, `https://host/dns-query`, v2's `ip:53/tcp`, bare `ip[:port]`
 * = UDP). A UDP reply with the TC bit set is asked again over TCP of the same upstream.
 */
import { closeQuietly, type Conn, joinHostPort, writeAll } from "../../core/conn.ts";
import { ProtocolError } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import type { Router } from "../../chain/router.ts";
import { parseNameserver, withTimeout } from "../../access/dns/exchanger.ts";
import { streamExchange } from "../../access/dns/tcp.ts";
import { tlsClient } from "../../transport/tls/client.ts";
import { FLAG_TC } from "./wire.ts";

/** Sends one query to an upstream and returns its reply. */
export interface Upstream {
  /** `proto://addr`, for logs. */
  readonly name: string;
  exchange(query: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
}

/** Largest DoH reply read. */
const MAX_DOH_REPLY = 65_535;

/** Parses an upstream spec (throws ConfigError naming it) into an Upstream using `router`. */
export function parseUpstream(spec: string, router: Router, log: Logger): Upstream {
  // The resolver's parser validates the spec and gives its canonical `proto://host:port` form.
  const canonical = parseNameserver(spec).name;
  const m = /^([a-z]+):\/\/(.*)$/.exec(canonical)!;
  const proto = m[1];
  if (proto === "https") return new DohUpstream(new URL(canonical), router);
  const addr = m[2];
  switch (proto) {
    case "tcp":
      return new StreamUpstream(canonical, addr, router, false);
    case "tls":
      return new StreamUpstream(canonical, addr, router, true);
    default:
      return new UdpUpstream(canonical, addr, router, log);
  }
}

/** Runs `f` with `timeoutMs`, closing every conn it opened (`track`) on timeout and at the end. */
async function withConns<T>(
  name: string,
  timeoutMs: number,
  f: (track: (c: Conn) => Conn) => Promise<T>,
): Promise<T> {
  const open: Conn[] = [];
  let over = false;
  const track = (c: Conn) => {
    if (over) {
      closeQuietly(c);
      throw new Error("timed out");
    }
    open.push(c);
    return c;
  };
  try {
    return await withTimeout(name, timeoutMs, () => f(track), () => {
      over = true;
      open.forEach(closeQuietly);
    });
  } finally {
    over = true;
    open.forEach(closeQuietly);
  }
}

/** DNS over TCP (RFC 7766) or over TLS (RFC 7858), one query per connection. */
class StreamUpstream implements Upstream {
  constructor(
    readonly name: string,
    private readonly addr: string,
    private readonly router: Router,
    private readonly tls: boolean,
  ) {}

  exchange(query: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    return withConns(this.name, timeoutMs, async (track) => {
      let c = track(await this.router.dial("tcp", this.addr));
      // As gost (and the resolver): the upstream's certificate is not verified.
      if (this.tls) c = track(await tlsClient(c, { secure: false }, this.addr, timeoutMs));
      return await streamExchange(c, query);
    });
  }
}

/** DNS over UDP; a truncated reply is asked again over TCP of the same upstream. */
class UdpUpstream implements Upstream {
  private readonly tcp: StreamUpstream;
  constructor(
    readonly name: string,
    private readonly addr: string,
    private readonly router: Router,
    private readonly log: Logger,
  ) {
    this.tcp = new StreamUpstream(name.replace(/^udp:/, "tcp:"), addr, router, false);
  }

  async exchange(query: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    const start = Date.now();
    const reply = await withConns(this.name, timeoutMs, async (track) => {
      const c = track(await this.router.dialUDP(this.addr));
      await c.write(query);
      const buf = new Uint8Array(65_535);
      for (;;) {
        const n = await c.read(buf);
        if (n === null) throw new Error("UDP path closed before the reply");
        // Only the reply to this query counts (a late reply to an earlier one is dropped).
        if (n >= 12 && buf[0] === query[0] && buf[1] === query[1]) return buf.slice(0, n);
      }
    });
    if (((reply[2] << 8) | reply[3]) & FLAG_TC) {
      this.log.debug(`dns: truncated reply from ${this.name}, asking again over TCP`);
      return this.tcp.exchange(query, Math.max(1, timeoutMs - (Date.now() - start)));
    }
    return reply;
  }
}

/** DNS over HTTPS (RFC 8484 POST), HTTP/1.1 with one request per connection. */
class DohUpstream implements Upstream {
  readonly name: string;
  private readonly addr: string;
  constructor(private readonly url: URL, private readonly router: Router) {
    this.name = url.href;
    this.addr = joinHostPort(url.hostname.replace(/^\[|\]$/g, ""), url.port || 443);
  }

  exchange(query: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    return withConns(this.name, timeoutMs, async (track) => {
      const raw = track(await this.router.dial("tcp", this.addr));
      const c = track(await tlsClient(raw, { secure: false }, this.addr, timeoutMs));
      const host = this.url.host;
      const head = `POST ${this.url.pathname}${this.url.search} HTTP/1.1\r\nHost: ${host}\r\n` +
        "Content-Type: application/dns-message\r\nAccept: application/dns-message\r\n" +
        `Content-Length: ${query.length}\r\nConnection: close\r\n\r\n`;
      const req = new Uint8Array(head.length + query.length);
      req.set(new TextEncoder().encode(head));
      req.set(query, head.length);
      await writeAll(c, req);
      return parseHttpReply(await readAll(c, MAX_DOH_REPLY + 8192), this.name);
    });
  }
}

async function readAll(c: Conn, max: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let n = 0;
  const buf = new Uint8Array(16_384);
  for (;;) {
    const r = await c.read(buf);
    if (r === null) break;
    n += r;
    if (n > max) throw new ProtocolError(`reply larger than ${max} bytes`);
    chunks.push(buf.slice(0, r));
  }
  const out = new Uint8Array(n);
  let off = 0;
  for (const ch of chunks) {
    out.set(ch, off);
    off += ch.length;
  }
  return out;
}

/** The body of a whole HTTP/1.1 response (Content-Length, chunked, or up to the close). */
export function parseHttpReply(b: Uint8Array, name: string): Uint8Array {
  let end = -1;
  for (let i = 0; i + 3 < b.length; i++) {
    if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) {
      end = i;
      break;
    }
  }
  if (end < 0) throw new ProtocolError(`${name}: incomplete HTTP response`);
  const lines = new TextDecoder().decode(b.subarray(0, end)).split("\r\n");
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
  if (!status) throw new ProtocolError(`${name}: not an HTTP response: ${lines[0].slice(0, 60)}`);
  if (status[1] !== "200") throw new Error(`${name}: HTTP ${status[1]}`);
  const header = (k: string) =>
    lines.find((l) => l.toLowerCase().startsWith(k + ":"))?.slice(k.length + 1).trim();
  let body = b.subarray(end + 4);
  if (/chunked/i.test(header("transfer-encoding") ?? "")) {
    const parts: Uint8Array[] = [];
    let off = 0;
    for (;;) {
      const eol = body.indexOf(13, off);
      if (eol < 0) throw new ProtocolError(`${name}: truncated chunked body`);
      const size = parseInt(new TextDecoder().decode(body.subarray(off, eol)), 16);
      if (!(size >= 0)) throw new ProtocolError(`${name}: bad chunk size`);
      if (size === 0) break;
      if (eol + 2 + size > body.length) throw new ProtocolError(`${name}: truncated chunk`);
      parts.push(body.subarray(eol + 2, eol + 2 + size));
      off = eol + 2 + size + 2;
    }
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
  const len = header("content-length");
  if (len !== undefined) {
    const n = Number(len);
    if (!(n >= 0) || n > body.length) throw new ProtocolError(`${name}: truncated body`);
    body = body.subarray(0, n);
  }
  return body.slice();
}
