/**
 * SOCKS5 BIND (RFC 1928 §4), direct (no chain): listen, first reply with the listening address,
 * accept one peer, second reply with the peer's address, then relay control ↔ peer.
 *
 * While waiting for the peer the control connection is watched, so a client that gives up (closes)
 * frees the listening port at once. Bytes the client sends early are kept and delivered to the
 * peer once it connects.
 */
import {
  type Addr,
  addrString,
  closeQuietly,
  type Conn,
  setNoDelay,
  writeAll,
} from "../../core/conn.ts";
import { errMsg, ProtocolError } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import { relay } from "../../core/relay.ts";
import { normalizeIP } from "../socks/addr.ts";
import { encodeReply, Rep, type Request } from "./wire.ts";

/** Early bytes the client may send before the peer connects. */
const MAX_EARLY = 64 * 1024;

/**
 * Runs one BIND on the control connection `ctl` (after the request was read). Listens on the
 * control connection's local IP and the requested port (0 = any).
 */
export async function serveBind(
  ctl: Conn,
  req: Request,
  o: { idleTimeout: number },
  log: Logger,
): Promise<void> {
  const ip = normalizeIP(ctl.localAddr.hostname);
  let ln: Deno.TcpListener;
  try {
    ln = Deno.listen({ hostname: ip, port: req.addr.port, transport: "tcp" });
  } catch (e) {
    log.warn(`bind: cannot listen on ${ip}:${req.addr.port}: ${errMsg(e)}`);
    await writeAll(ctl, encodeReply(Rep.Failure)).catch(() => {});
    return;
  }
  const bound = ln.addr;
  try {
    await writeAll(ctl, encodeReply(Rep.Succeeded, ip, bound.port));
  } catch (e) {
    closeQuietly(ln);
    log.debug(`bind: first reply failed: ${errMsg(e)}`);
    return;
  }
  log.debug(`bind ${addrString(ctl.remoteAddr)}: listening on ${addrString(bound)}`);

  const watched = new PrefetchConn(ctl);
  const acceptP = ln.accept();
  acceptP.catch(() => {}); // rejected when the listener is closed below; handled via race
  let peer: Deno.TcpConn | undefined;
  try {
    while (!peer) {
      const r = await Promise.race([
        acceptP.then((c) => c, () => null),
        watched.prefetch().then(() => "ctl" as const),
      ]);
      if (r === "ctl") {
        if (watched.ended) {
          log.debug(`bind ${addrString(ctl.remoteAddr)}: client left before a peer connected`);
          return;
        }
        if (watched.queued > MAX_EARLY) {
          throw new ProtocolError(`client sent over ${MAX_EARLY} bytes before the peer connected`);
        }
        continue;
      }
      if (r === null) {
        log.debug(`bind: accept on ${addrString(bound)} failed`);
        await writeAll(ctl, encodeReply(Rep.Failure)).catch(() => {});
        return;
      }
      peer = r;
    }
  } finally {
    closeQuietly(ln);
  }

  setNoDelay(peer);
  const from: Addr = peer.remoteAddr;
  log.debug(`bind ${addrString(ctl.remoteAddr)}: peer ${addrString(from)} connected`);
  try {
    await writeAll(ctl, encodeReply(Rep.Succeeded, from.hostname, from.port));
  } catch (e) {
    closeQuietly(peer);
    log.debug(`bind: second reply failed: ${errMsg(e)}`);
    return;
  }
  await relay(watched, peer, { idleTimeout: o.idleTimeout });
}

/**
 * A Conn that can read ahead of its user: prefetch() starts (at most) one read whose bytes are
 * queued for later read() calls. Lets the BIND wait notice the client closing without losing
 * what it sent, and hands a still-pending read over to the relay instead of racing it.
 */
class PrefetchConn implements Conn {
  private readonly queue: Uint8Array[] = [];
  private pending: Promise<void> | null = null;
  private eof = false;
  private err: unknown;
  /** Bytes queued and not yet read. */
  queued = 0;

  constructor(private readonly inner: Conn) {}

  get localAddr(): Addr {
    return this.inner.localAddr;
  }
  get remoteAddr(): Addr {
    return this.inner.remoteAddr;
  }

  /** True once the wrapped conn ended or failed. */
  get ended(): boolean {
    return this.eof || this.err !== undefined;
  }

  /** Starts a read-ahead unless one is pending; resolves when it completes. */
  prefetch(): Promise<void> {
    if (this.pending) return this.pending;
    if (this.ended) return Promise.resolve();
    const chunk = new Uint8Array(16 * 1024);
    this.pending = this.inner.read(chunk).then((n) => {
      if (n === null) this.eof = true;
      else {
        this.queue.push(chunk.slice(0, n));
        this.queued += n;
      }
    }, (e) => {
      this.err = e;
    }).finally(() => {
      this.pending = null;
    });
    return this.pending;
  }

  async read(p: Uint8Array): Promise<number | null> {
    if (this.pending) await this.pending;
    const head = this.queue[0];
    if (head) {
      const n = Math.min(p.length, head.length);
      p.set(head.subarray(0, n));
      if (n === head.length) this.queue.shift();
      else this.queue[0] = head.subarray(n);
      this.queued -= n;
      return n;
    }
    if (this.err !== undefined) throw this.err;
    if (this.eof) return null;
    return this.inner.read(p);
  }
  write(p: Uint8Array): Promise<number> {
    return this.inner.write(p);
  }
  closeWrite(): Promise<void> {
    return this.inner.closeWrite();
  }
  close(): void {
    this.inner.close();
  }
}
