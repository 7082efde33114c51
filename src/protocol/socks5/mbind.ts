/**
 * SOCKS5 MUX-BIND (gost's command 0xF2, protocols.md §2.2), server side: remote TCP forwarding
 * for many connections over one control connection.
 *
 * Listen on the requested address, reply `05 00 00` + the bound address, then turn the control
 * connection into an smux session in which this server is the smux *client*. Every peer that
 * connects to the listening socket gets a new stream that starts with a SOCKS5 reply carrying the
 * peer's address (gost v3) — or with nothing when `comp=true` (gost v2 clients) — and then
 * carries the peer's bytes. The listener lives as long as the session.
 */
import {
  addrString,
  closeQuietly,
  type Conn,
  joinHostPort,
  setNoDelay,
  writeAll,
} from "../../core/conn.ts";
import { errMsg } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import { relay } from "../../core/relay.ts";
import type { MuxConfig } from "../../transport/mux/config.ts";
import { MuxSession } from "../../transport/mux/session.ts";
import { normalizeIP } from "../socks/addr.ts";
import { encodeReply, Rep, type Request } from "./wire.ts";

/** The SOCKS5 command of gost's multiplexed BIND. */
export const CMD_MUX_BIND = 0xf2;

/** Settings of MUX-BIND, from the handler's parameters. */
export interface MuxBindOptions {
  /** `comp=true`: no SOCKS5 reply at the start of each stream (gost v2 compatible). */
  compat: boolean;
  mux: MuxConfig;
  idleTimeout: number;
  /** IP announced in the reply instead of the control connection's local IP, or "". */
  publicAddr: string;
}

/** Host to listen on for a requested host: empty means every IPv4 interface, as gost does. */
function listenHost(host: string): string {
  return host === "" ? "0.0.0.0" : host;
}

/** Serves one MUX-BIND on `ctl` (after the request was read) until the session ends. */
export async function serveMuxBind(
  ctl: Conn,
  req: Request,
  o: MuxBindOptions,
  log: Logger,
): Promise<void> {
  const want = joinHostPort(listenHost(req.addr.host), req.addr.port);
  let ln: Deno.TcpListener;
  try {
    ln = Deno.listen({
      hostname: listenHost(req.addr.host),
      port: req.addr.port,
      transport: "tcp",
    });
  } catch (e) {
    log.warn(`mbind: cannot listen on ${want}: ${errMsg(e)}`);
    await writeAll(ctl, encodeReply(Rep.Failure)).catch(() => {});
    closeQuietly(ctl);
    return;
  }
  const bound = ln.addr;
  const client = addrString(ctl.remoteAddr);
  try {
    const host = o.publicAddr || normalizeIP(ctl.localAddr.hostname);
    await writeAll(ctl, encodeReply(Rep.Succeeded, host, bound.port));
  } catch (e) {
    closeQuietly(ln);
    log.debug(`mbind ${client}: reply failed: ${errMsg(e)}`);
    return;
  }
  log.debug(`mbind ${client}: listening on ${addrString(bound)}`);

  const session = new MuxSession(ctl, { client: true, config: o.mux, log });
  // The other side has no business opening streams here: refuse them, as gost does.
  (async () => {
    for (;;) (await session.acceptStream()).close();
  })().catch(() => {});
  session.done.then(() => closeQuietly(ln));

  const peers = new Set<Conn>();
  try {
    for (;;) {
      let peer: Deno.TcpConn;
      try {
        peer = await ln.accept();
      } catch (e) {
        if (!session.isClosed) log.warn(`mbind: accept on ${addrString(bound)}: ${errMsg(e)}`);
        break;
      }
      setNoDelay(peer);
      peers.add(peer);
      forward(session, peer, o, log).finally(() => peers.delete(peer));
    }
  } finally {
    session.close();
    closeQuietly(ln);
    for (const p of peers) closeQuietly(p);
  }
  log.debug(
    `mbind ${client}: listener ${addrString(bound)} closed (${session.error?.message ?? "done"})`,
  );
}

/** One peer: a new stream, the peer's address unless in compat mode, then relay. */
async function forward(
  session: MuxSession,
  peer: Deno.TcpConn,
  o: MuxBindOptions,
  log: Logger,
): Promise<void> {
  const from = peer.remoteAddr;
  let stream: Conn;
  try {
    stream = await session.openStream();
    if (!o.compat) {
      await writeAll(stream, encodeReply(Rep.Succeeded, normalizeIP(from.hostname), from.port));
    }
  } catch (e) {
    log.debug(`mbind: peer ${addrString(from)}: no stream: ${errMsg(e)}`);
    closeQuietly(peer);
    return;
  }
  log.debug(`mbind: peer ${addrString(from)} → ${addrString(peer.localAddr)} forwarded`);
  await relay(stream, peer, { idleTimeout: o.idleTimeout });
}
