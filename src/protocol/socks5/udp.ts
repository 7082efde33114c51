/**
 * SOCKS5 UDP ASSOCIATE (RFC 1928 §7), direct (no chain).
 *
 * One client-facing UDP socket, bound on the local IP of the TCP control connection (the address
 * announced in the reply, so replies carry the source IP the client expects), and one outgoing
 * socket per IP family, opened on first use. Client datagrams are accepted only from the control
 * connection's IP (and the port the request named, if any); the first accepted datagram locks the
 * association to that ip:port. The association lives as long as the control connection.
 */
import { joinHostPort } from "../../core/conn.ts";
import { addrString, closeQuietly, type Conn, writeAll } from "../../core/conn.ts";
import { errMsg } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import { encodeAddr, ipVersion, normalizeIP } from "../socks/addr.ts";
import type { HostResolver } from "../../core/resolve.ts";
import { decodeUdpDatagram, encodeReply, Rep, type Request, writeUdpHeader } from "./wire.ts";

/** Settings of UDP associations, from the handler's parameters. */
export interface UdpAssociateOptions {
  /**
   * gost's `udp.bufferSize`. Receive buffers are never smaller than 64 KiB, so full-size
   * datagrams are relayed whole (gost truncates at this size; dost does not need to).
   */
  bufferSize: number;
  /** Port range for the client-facing socket (both 0 = any port). */
  bindMin: number;
  bindMax: number;
  /** IP announced in the reply instead of the bound one (NAT), or "" for the bound one. */
  publicAddr: string;
  resolver: HostResolver;
  /** The service's bypass/permissions for a datagram's target (`host:port`); absent = all. */
  allow?: (target: string) => boolean;
  /**
   * With a chain: opens a UDP path to one target through it (a message-preserving Conn); the
   * association then keeps one per target instead of its own outgoing sockets.
   */
  dialUDP?: (target: string) => Promise<Conn>;
}

/** Targets one association may reach through a chain at once; datagrams for more are dropped. */
const MAX_CHAIN_TARGETS = 256;

/** Room before the payload for the largest reply header (RSV FRAG ATYP IPv6 PORT = 22 bytes). */
const MAX_REPLY_HEADER = 22;

type Datagram = Deno.DatagramConn;

/** Opens a UDP socket on `ip`, on a port in [min, max] when a range is given, else any port. */
function listenUdp(ip: string, min: number, max: number): Datagram {
  if (min <= 0 || max < min) {
    return Deno.listenDatagram({ transport: "udp", hostname: ip, port: 0 });
  }
  const span = max - min + 1;
  // Start at a random port of the range so concurrent associations do not all race for `min`.
  const offset = Math.floor(Math.random() * span);
  let lastErr: unknown;
  for (let i = 0; i < Math.min(span, 64); i++) {
    try {
      return Deno.listenDatagram({
        transport: "udp",
        hostname: ip,
        port: min + (offset + i) % span,
      });
    } catch (e) {
      if (!(e instanceof Deno.errors.AddrInUse)) throw e;
      lastErr = e;
    }
  }
  throw lastErr;
}

/**
 * Runs one association on the control connection `ctl` (after the request was read): binds,
 * replies, relays until `ctl` closes. Writes the failure reply itself when binding fails.
 */
export async function serveUdpAssociate(
  ctl: Conn,
  req: Request,
  o: UdpAssociateOptions,
  log: Logger,
): Promise<void> {
  const localIP = normalizeIP(ctl.localAddr.hostname);
  const clientIP = normalizeIP(ctl.remoteAddr.hostname);
  let sock: Datagram;
  try {
    if (typeof Deno.listenDatagram !== "function") {
      throw new Error("UDP needs the --unstable-net flag");
    }
    sock = listenUdp(localIP, o.bindMin, o.bindMax);
  } catch (e) {
    log.warn(`udp associate: cannot bind a UDP socket on ${localIP}: ${errMsg(e)}`);
    await writeAll(ctl, encodeReply(Rep.Failure)).catch(() => {});
    return;
  }
  const bound = sock.addr as Deno.NetAddr;
  const assoc = new Association(sock, clientIP, req, o, log);
  try {
    await writeAll(ctl, encodeReply(Rep.Succeeded, o.publicAddr || localIP, bound.port));
  } catch (e) {
    log.debug(`udp associate: reply failed: ${errMsg(e)}`);
    assoc.close();
    return;
  }
  log.debug(`udp associate ${addrString(ctl.remoteAddr)}: relay on ${addrString(bound)}`);
  const relayDone = assoc.run();
  // The association ends with the control connection; anything the client sends on it is
  // meaningless and dropped. A relay failure ends the control connection too.
  await Promise.race([drain(ctl), relayDone]);
  closeQuietly(ctl);
  assoc.close();
  await relayDone;
  log.debug(
    `udp associate ${addrString(ctl.remoteAddr)}: association ended (relay ${
      addrString(bound)
    }, ${assoc.sent} datagrams out, ${assoc.received} back)`,
  );
}

/** Reads `c` until end of stream or an error, discarding the bytes. */
async function drain(c: Conn): Promise<void> {
  const buf = new Uint8Array(512);
  try {
    while ((await c.read(buf)) !== null) { /* discard */ }
  } catch { /* reset or closed: the association ends either way */ }
}

/** The sockets and state of one association. */
class Association {
  /** Client datagrams relayed to targets. */
  sent = 0;
  /** Target datagrams relayed to the client. */
  received = 0;
  private client?: Deno.NetAddr;
  private readonly wantPort: number;
  private out4?: Datagram;
  private out6?: Datagram;
  private readonly outLoops: Promise<void>[] = [];
  /** Through a chain: one UDP path per target (`host:port`), opened on first use. */
  private readonly paths = new Map<string, Promise<Conn | null>>();
  private closed = false;

  constructor(
    private readonly sock: Datagram,
    private readonly clientIP: string,
    req: Request,
    private readonly o: UdpAssociateOptions,
    private readonly log: Logger,
  ) {
    // The request may name the address the client will send from; zero means "unknown". The
    // IP filter always stays the control connection's IP, so another host can never use the
    // relay; a named IP that differs from it (a client behind NAT guessing) is ignored.
    this.wantPort = req.addr.port;
    const named = ipVersion(req.addr.host) ? normalizeIP(req.addr.host) : "";
    if (named && named !== "0.0.0.0" && named !== "::" && named !== clientIP) {
      log.debug(
        `udp associate: requested source ${named} is not the client's ${clientIP}; ignored`,
      );
    }
  }

  /** Relays until close() or a socket failure. */
  async run(): Promise<void> {
    try {
      await this.clientLoop();
    } finally {
      this.close();
      await Promise.all(this.outLoops);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeQuietly(this.sock);
    closeQuietly(this.out4);
    closeQuietly(this.out6);
    for (const p of this.paths.values()) void p.then(closeQuietly);
  }

  /** Client → targets: check the source, strip the header, resolve, send. */
  private async clientLoop(): Promise<void> {
    const buf = new Uint8Array(Math.max(this.o.bufferSize, 65535) + MAX_REPLY_HEADER);
    while (!this.closed) {
      let pkt: Uint8Array, from: Deno.NetAddr;
      try {
        [pkt, from] = (await this.sock.receive(buf)) as [Uint8Array, Deno.NetAddr];
      } catch (e) {
        if (!this.closed) this.log.debug(`udp associate: receive: ${errMsg(e)}`);
        return;
      }
      if (!this.acceptFrom(from)) continue;
      let d;
      try {
        d = decodeUdpDatagram(pkt);
      } catch (e) {
        this.log.debug(`udp associate: bad datagram from ${addrString(from)}: ${errMsg(e)}`);
        continue;
      }
      if (d.frag !== 0) {
        this.log.debug(`udp associate: dropped fragment ${d.frag} (fragmentation unsupported)`);
        continue;
      }
      if (this.o.allow && !this.o.allow(joinHostPort(d.addr.host, d.addr.port))) {
        this.log.debug(`udp associate: datagram to ${d.addr.host}:${d.addr.port} not allowed`);
        continue;
      }
      if (this.o.dialUDP) {
        await this.viaChain(
          joinHostPort(d.addr.host, d.addr.port),
          d.addr.host,
          d.addr.port,
          d.data,
        );
        continue;
      }
      let ip: string;
      try {
        ip = await this.o.resolver.resolve(d.addr.host);
      } catch (e) {
        this.log.debug(`udp associate: dropped datagram: ${errMsg(e)}`);
        continue;
      }
      try {
        const out = this.outSocket(ipVersion(ip) === 6 ? 6 : 4);
        await out.send(d.data, { transport: "udp", hostname: ip, port: d.addr.port });
        this.sent++;
      } catch (e) {
        if (this.closed) return;
        this.log.debug(`udp associate: send to ${d.addr.host}:${d.addr.port}: ${errMsg(e)}`);
      }
    }
  }

  /** Sends `data` to `target` on its path through the chain (opened on first use). */
  private async viaChain(target: string, host: string, port: number, data: Uint8Array) {
    let path = this.paths.get(target);
    if (!path) {
      if (this.paths.size >= MAX_CHAIN_TARGETS) {
        this.log.debug(`udp associate: more than ${MAX_CHAIN_TARGETS} targets; ${target} dropped`);
        return;
      }
      path = this.o.dialUDP!(target).then((c) => {
        if (this.closed) {
          closeQuietly(c);
          return null;
        }
        this.outLoops.push(this.pathLoop(c, host, port));
        return c;
      }, (e) => {
        this.log.warn(`udp associate: ${target}: ${errMsg(e)}`);
        return null;
      });
      this.paths.set(target, path);
    }
    const c = await path;
    if (!c) return;
    try {
      await c.write(data.slice()); // the receive buffer is reused
      this.sent++;
    } catch (e) {
      if (!this.closed) this.log.debug(`udp associate: send to ${target}: ${errMsg(e)}`);
    }
  }

  /** Replies on one chain path → the client, with a header naming the target as the source. */
  private async pathLoop(c: Conn, host: string, port: number): Promise<void> {
    const buf = new Uint8Array(65535);
    for (;;) {
      let n: number | null;
      try {
        n = await c.read(buf);
      } catch {
        n = null;
      }
      if (n === null || this.closed) break;
      const client = this.client;
      if (!client) continue;
      const hdr = encodeReplyHeader(host, port);
      const out = new Uint8Array(hdr.length + n);
      out.set(hdr);
      out.set(buf.subarray(0, n), hdr.length);
      try {
        await this.sock.send(out, client);
        this.received++;
      } catch (e) {
        if (this.closed) break;
        this.log.debug(`udp associate: send to client ${addrString(client)}: ${errMsg(e)}`);
      }
    }
    closeQuietly(c);
  }

  /** Source filter: the control connection's IP, the named port, then the first sender only. */
  private acceptFrom(from: Deno.NetAddr): boolean {
    if (this.client) {
      return from.port === this.client.port && normalizeIP(from.hostname) === this.clientIP;
    }
    if (normalizeIP(from.hostname) !== this.clientIP) {
      this.log.debug(`udp associate: dropped datagram from stranger ${addrString(from)}`);
      return false;
    }
    if (this.wantPort !== 0 && from.port !== this.wantPort) {
      this.log.debug(`udp associate: dropped datagram from unexpected port ${addrString(from)}`);
      return false;
    }
    this.client = from;
    return true;
  }

  /** The outgoing socket for an IP family, opened (with its receive loop) on first use. */
  private outSocket(family: 4 | 6): Datagram {
    const have = family === 4 ? this.out4 : this.out6;
    if (have) return have;
    const s = Deno.listenDatagram({
      transport: "udp",
      hostname: family === 4 ? "0.0.0.0" : "::",
      port: 0,
    });
    if (family === 4) this.out4 = s;
    else this.out6 = s;
    this.outLoops.push(this.targetLoop(s));
    return s;
  }

  /** Targets → client: prepend the header naming the source, send to the locked client. */
  private async targetLoop(s: Datagram): Promise<void> {
    const buf = new Uint8Array(Math.max(this.o.bufferSize, 65535) + MAX_REPLY_HEADER);
    // Receive behind room for the header, then write the header just before the payload, so
    // the reply needs no copy.
    const room = buf.subarray(MAX_REPLY_HEADER);
    while (!this.closed) {
      let data: Uint8Array, from: Deno.NetAddr;
      try {
        [data, from] = (await s.receive(room)) as [Uint8Array, Deno.NetAddr];
      } catch (e) {
        if (!this.closed) this.log.debug(`udp associate: target receive: ${errMsg(e)}`);
        return;
      }
      const client = this.client;
      if (!client) continue;
      const src = normalizeIP(from.hostname);
      const hlen = ipVersion(src) === 6 ? 22 : 10;
      const start = MAX_REPLY_HEADER - hlen;
      writeUdpHeader(buf, start, src, from.port);
      try {
        await this.sock.send(buf.subarray(start, MAX_REPLY_HEADER + data.length), client);
        this.received++;
      } catch (e) {
        if (this.closed) return;
        this.log.debug(`udp associate: send to client ${addrString(client)}: ${errMsg(e)}`);
      }
    }
  }
}

/** The SOCKS5 UDP header (RSV RSV FRAG=0 + address) for a datagram from `host:port`. */
function encodeReplyHeader(host: string, port: number): Uint8Array {
  const addr = encodeAddr(host, port);
  const h = new Uint8Array(3 + addr.length);
  h.set(addr, 3);
  return h;
}
