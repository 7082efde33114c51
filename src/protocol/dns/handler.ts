/**
 * The DNS proxy (`dns://:P/upstream[,upstream…]`): handler `dns`, as gost's. Each message its
 * listener yields (src/transport/dns/listener.ts: one read = one query, over UDP, TCP or TLS) is
 * answered in this order:
 *  1. garbage (no header, no question, a response) is dropped with a debug line;
 *  2. `clientIP=` adds an EDNS client subnet to the query (a subnet sent by the client is kept);
 *  3. a class-IN name the service's bypass matches gets an empty NOERROR reply (gost's answer);
 *  4. A/AAAA of a name in the service's hosts (`hosts=`) is answered from it (TTL 3600, as gost);
 *  5. a cached reply (see cache.ts; `ttl=` overrides lifetimes) is served with the query's ID
 *     (NOERROR and NXDOMAIN replies are cached; SERVFAIL, REFUSED and truncated ones are not);
 *  6. otherwise one upstream, picked by the forwarder's selector (round-robin by default, as
 *     gost's node group; `strategy=`, `max_fails=`, `fail_timeout=` apply), is asked within
 *     `timeout=` (5 s), through the chain if there is one. An upstream that fails is marked for
 *     the fail filter and, as in gost, the client gets no reply (it retries; the next query
 *     goes to the next upstream).
 * Upstreams are the `-L` targets, else the `dns=` list, else `udp://127.0.0.1:53` (gost's
 * default, with a warning). `bufferSize=` [1024, gost's] bounds the query size.
 */
import { addrString, type Conn } from "../../core/conn.ts";
import { ConfigError, errMsg, ProtocolError } from "../../core/errors.ts";
import { ipVersion, normalizeIP } from "../../core/ip.ts";
import type { Logger } from "../../core/logger.ts";
import type { HostMapper } from "../../access/hosts.ts";
import { NameResolution } from "../../access/resolver.ts";
import type { Bypass } from "../../access/bypass.ts";
import { type NodeGroup, type Target, targetGroup } from "../../chain/group.ts";
import {
  type HandleContext,
  type Handler,
  type HandlerOptions,
  registerHandler,
} from "../../registry.ts";
import { DnsCache } from "./cache.ts";
import { parseUpstream, type Upstream } from "./upstream.ts";
import {
  buildReply,
  CLASS_IN,
  FLAG_QR,
  FLAG_TC,
  parseMessage,
  type Question,
  rcodeName,
  rcodeOf,
  records,
  TYPE_A,
  TYPE_AAAA,
  typeName,
  withClientSubnet,
} from "./wire.ts";

/** gost's upstream when none is configured. */
const DEFAULT_NAMESERVER = "udp://127.0.0.1:53";
/** TTL of answers from the hosts table (miekg/dns's default, which gost's answers carry). */
const HOSTS_TTL = 3600;
/** Queries of one client connection/session answered at the same time. */
const MAX_IN_FLIGHT = 64;
const RCODE_NXDOMAIN = 3;

export class DnsHandler implements Handler {
  private readonly group: NodeGroup<Target>;
  private readonly upstreams = new Map<string, Upstream>();
  private readonly cache: DnsCache;
  private readonly timeout: number;
  private readonly clientIP?: string;
  private readonly bufferSize: number;
  private readonly hosts?: HostMapper;
  private readonly bypass?: Bypass;

  constructor(private readonly o: HandlerOptions) {
    const p = o.params;
    const ttl = p.duration("ttl", 0);
    this.cache = new DnsCache(ttl < 0 ? -1 : Math.ceil(ttl / 1000));
    const t = p.duration("timeout", 0);
    this.timeout = t > 0 ? t : 5_000;
    const ip = p.str("clientIP");
    if (ip !== undefined && ip.trim() !== "") {
      if (ipVersion(ip.trim()) === 0) {
        throw new ConfigError(`${p.where}: parameter "clientIP": "${ip}" is not an IP address`);
      }
      this.clientIP = normalizeIP(ip.trim());
    }
    this.bufferSize = p.int("bufferSize", 1024, 12, 65535);
    // Read by gost's dns handler too, and unused there as here: the listener applies it.
    p.duration("readTimeout", 0);
    const dnsList = p.list("dns");
    let group = o.forwarder;
    if (!group) {
      let specs = o.targets.length ? o.targets : dnsList;
      if (!specs.length) {
        o.log.warn(`no upstream nameserver given, using ${DEFAULT_NAMESERVER} (as gost)`);
        specs = [DEFAULT_NAMESERVER];
      }
      group = targetGroup(
        `${o.service}/dns`,
        specs.map((addr, i) => ({ name: `target-${i}`, addr })),
      );
    }
    this.group = group;
    // Upstream queries are not client targets: the bypass applies to query names (below).
    const upstreamRouter = o.rawRouter ?? o.router;
    for (const t of group.nodes) {
      try {
        this.upstreams.set(t.addr, parseUpstream(t.addr, upstreamRouter, o.log));
      } catch (e) {
        throw new ConfigError(`${p.where}: upstream ${errMsg(e)}`);
      }
    }
    const names = o.router.names;
    if (names instanceof NameResolution) this.hosts = names.hosts;
    this.bypass = o.bypass;
  }

  async handle(conn: Conn, ctx: HandleContext): Promise<void> {
    const client = addrString(conn.remoteAddr);
    const pending = new Set<Promise<void>>();
    // One byte more than bufferSize tells an oversized UDP query from one that just fits.
    const buf = new Uint8Array(this.bufferSize + 1);
    try {
      for (;;) {
        let n: number | null;
        try {
          n = await conn.read(buf);
        } catch (e) {
          // Framing errors of stream clients (truncated length prefix, oversized message).
          ctx.log.debug(`dns: ${client}: ${errMsg(e)}; closing`);
          break;
        }
        if (n === null) break;
        if (n > this.bufferSize) {
          ctx.log.debug(`dns: ${client}: query larger than bufferSize ${this.bufferSize}, dropped`);
          continue;
        }
        const query = buf.slice(0, n);
        const job = this.serve(conn, query, client, ctx.log).finally(() => pending.delete(job));
        pending.add(job);
        if (pending.size >= MAX_IN_FLIGHT) await Promise.race(pending);
      }
    } finally {
      await Promise.all(pending);
    }
  }

  /** Answers one query on `conn` (or drops it, logging why). */
  private async serve(conn: Conn, query: Uint8Array, client: string, log: Logger): Promise<void> {
    const reply = await this.answer(query, client, log);
    if (!reply) return;
    try {
      await conn.write(reply);
    } catch (e) {
      log.debug(`dns: reply to ${client}: ${errMsg(e)}`);
    }
  }

  /** The reply to `query`, or null when there is none to send. */
  async answer(query: Uint8Array, client: string, log: Logger): Promise<Uint8Array | null> {
    let q: Question;
    try {
      q = parseMessage(query);
      if (q.flags & FLAG_QR) throw new ProtocolError("message is a response, not a query");
    } catch (e) {
      log.debug(`dns: ${client}: malformed query (${query.length} bytes): ${errMsg(e)}`);
      return null;
    }
    const what = `${q.name || "."} ${typeName(q.qtype)}`;
    if (this.clientIP) {
      try {
        query = withClientSubnet(query, this.clientIP);
      } catch (e) {
        log.debug(`dns: ${client}: ${what}: malformed records: ${errMsg(e)}`);
        return null;
      }
    }
    if (q.qclass === CLASS_IN && this.bypass?.contains("udp", q.name)) {
      log.debug(`dns: ${what}: bypassed, empty reply`);
      return buildReply(query, q, [], 0);
    }
    const mapped = this.fromHosts(q);
    if (mapped) {
      log.debug(`dns: ${what}: hosts → ${mapped.join(", ")}`);
      return buildReply(query, q, mapped, HOSTS_TTL);
    }
    // Only single-question messages are cached (as gost).
    const key = q.qdcount === 1 ? DnsCache.key(q.name, q.qclass, q.qtype) : undefined;
    if (key) {
      const hit = this.cache.get(key, q.id);
      if (hit) {
        // The asker's own spelling of the name (clients randomizing case, RFC draft 0x20, check it).
        if (parseMessage(hit.msg).end === q.end) hit.msg.set(query.subarray(12, q.end), 12);
        log.debug(`dns: ${what}: cache hit (ttl ${hit.ttl}s)`);
        return hit.msg;
      }
    }
    const target = this.group.select({ key: client.replace(/:\d+$/, "") });
    const up = target && this.upstreams.get(target.addr);
    if (!target || !up) {
      log.warn(`dns: ${what}: no upstream available`);
      return null;
    }
    let reply: Uint8Array;
    try {
      reply = await up.exchange(query, this.timeout);
      const r = parseMessage(reply);
      if (!(r.flags & FLAG_QR)) throw new ProtocolError("reply is not a response");
      if (r.id !== q.id) throw new ProtocolError("reply ID does not match the query");
      records(reply); // the cache rewrites TTLs: records must parse
    } catch (e) {
      target.marker.mark();
      log.warn(`dns: ${what} via ${up.name}: ${errMsg(e)}`);
      return null;
    }
    target.marker.reset();
    const rcode = rcodeOf(reply);
    const an = (reply[6] << 8) | reply[7];
    let cached = 0;
    // Only answers and negative answers (NOERROR, NXDOMAIN) are kept, and never a truncated
    // reply: a SERVFAIL or REFUSED is the upstream's state, not the name's (gost keeps all).
    if (
      key && (rcode === 0 || rcode === RCODE_NXDOMAIN) && !(((reply[2] << 8) | reply[3]) & FLAG_TC)
    ) {
      cached = this.cache.set(key, reply);
    }
    log.debug(
      `dns: ${what} via ${up.name}: ${rcodeName(rcode)}, ${an} answer${an === 1 ? "" : "s"}` +
        (cached ? `, cached for ${cached}s` : ""),
    );
    return reply;
  }

  /** The hosts table's addresses of the asked family for an IN A/AAAA question, if any. */
  private fromHosts(q: Question): string[] | undefined {
    if (!this.hosts || q.qclass !== CLASS_IN) return undefined;
    if (q.qtype !== TYPE_A && q.qtype !== TYPE_AAAA) return undefined;
    const want = q.qtype === TYPE_A ? 4 : 6;
    const ips = this.hosts.lookup(q.name)?.filter((ip) => ipVersion(ip) === want);
    return ips?.length ? ips : undefined;
  }
}

registerHandler("dns", (o) => new DnsHandler(o));
