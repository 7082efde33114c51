/**
 * SOCKS5 UDP-TUN (gost's command 0xF3, protocols.md §2.2), server side: UDP datagrams carried on
 * the TCP control connection as UDP-TUN frames (udp_tun.ts).
 *
 * - Port ≠ 0, "bind" mode (needs `bind=true`): bind a UDP socket on the requested address — the
 *   far end of `rudp` remote forwarding. Datagrams arriving there go to the client framed with
 *   their source; frames from the client are sent to the address they name (a peer).
 * - Port 0, "associate" mode (needs `udp=true`): an ephemeral socket; frames name any
 *   destination (gost's default UDP path through a SOCKS5 node).
 *
 * The reply is `05 00 00` + the UDP socket's address. The association lives as long as the TCP
 * connection.
 */
import { BufferedConn } from "../../core/bufconn.ts";
import { addrString, closeQuietly, joinHostPort, writeAll } from "../../core/conn.ts";
import { errMsg } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import { normalizeIP } from "../socks/addr.ts";
import type { HostResolver } from "../../core/resolve.ts";
import { encodeUdpTunFrame, readUdpTunFrame } from "./udp_tun.ts";
import { encodeReply, Rep, type Request } from "./wire.ts";

/** Settings of UDP-TUN associations. */
export interface UdpTunOptions {
  /** Receive buffer size; longer datagrams are truncated (gost's `udp.bufferSize`). */
  bufferSize: number;
  resolver: HostResolver;
  /** The service's bypass/permissions for a datagram's target (`host:port`); absent = all. */
  allow?: (target: string) => boolean;
  /** Close after this many ms without a datagram either way (0 = never). */
  idleTimeout: number;
}

function openSocket(host: string, port: number): Deno.DatagramConn {
  if (host !== "" && host !== "0.0.0.0") {
    return Deno.listenDatagram({ transport: "udp", hostname: host, port });
  }
  // All interfaces; dual-stack where the host has IPv6.
  try {
    return Deno.listenDatagram({ transport: "udp", hostname: host === "" ? "::" : host, port });
  } catch (e) {
    if (host !== "" || e instanceof Deno.errors.AddrInUse) throw e;
    return Deno.listenDatagram({ transport: "udp", hostname: "0.0.0.0", port });
  }
}

/** Serves one UDP-TUN on `ctl` (after the request was read) until either side ends. */
export async function serveUdpTun(
  ctl: BufferedConn,
  req: Request,
  o: UdpTunOptions,
  log: Logger,
): Promise<void> {
  const bindMode = req.addr.port !== 0;
  const host = bindMode ? req.addr.host : "";
  const client = addrString(ctl.remoteAddr);
  let sock: Deno.DatagramConn;
  try {
    sock = openSocket(host, req.addr.port);
  } catch (e) {
    log.warn(
      `udp-tun: cannot bind ${joinHostPort(host || "0.0.0.0", req.addr.port)}: ${errMsg(e)}`,
    );
    await writeAll(ctl, encodeReply(Rep.Failure)).catch(() => {});
    closeQuietly(ctl);
    return;
  }
  const local = sock.addr as Deno.NetAddr;
  try {
    await writeAll(ctl, encodeReply(Rep.Succeeded, normalizeIP(local.hostname), local.port));
  } catch (e) {
    closeQuietly(sock);
    log.debug(`udp-tun ${client}: reply failed: ${errMsg(e)}`);
    return;
  }
  log.debug(`udp-tun ${client}: ${bindMode ? "bound" : "relaying"} on ${addrString(local)}`);

  let last = Date.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const end = () => {
    closeQuietly(sock);
    closeQuietly(ctl);
  };
  if (o.idleTimeout > 0) {
    const check = () => {
      const left = last + o.idleTimeout - Date.now();
      if (left <= 0) end();
      else timer = setTimeout(check, left);
    };
    timer = setTimeout(check, o.idleTimeout);
  }
  let out = 0;
  let back = 0;
  let dropped = 0;

  // Client → UDP: each frame names where its datagram goes.
  const up = (async () => {
    for (;;) {
      const f = await readUdpTunFrame(ctl);
      if (!f) return;
      last = Date.now();
      if (f.data.length === 0) continue;
      try {
        if (o.allow && !o.allow(joinHostPort(f.addr.host, f.addr.port))) {
          throw new Error("not allowed by bypass/permissions");
        }
        const ip = await o.resolver.resolve(f.addr.host);
        await sock.send(f.data, { transport: "udp", hostname: ip, port: f.addr.port });
        out++;
      } catch (e) {
        // One unroutable datagram must not end the association.
        if (!dropped++) {
          log.debug(`udp-tun ${client}: datagram to ${f.addr.host} dropped: ${errMsg(e)}`);
        }
      }
    }
  })();

  // UDP → client: framed with the sender's address.
  const down = (async () => {
    const buf = new Uint8Array(o.bufferSize);
    for (;;) {
      const [data, from] = (await sock.receive(buf)) as [Uint8Array, Deno.NetAddr];
      last = Date.now();
      await writeAll(ctl, encodeUdpTunFrame(normalizeIP(from.hostname), from.port, data));
      back++;
    }
  })();

  const why = await Promise.race([up.then(() => "client closed"), down]).catch((e) => errMsg(e));
  end();
  await Promise.allSettled([up, down]);
  clearTimeout(timer);
  log.debug(
    `udp-tun ${client}: ${addrString(local)} closed (${why}): ${out} datagrams out, ${back} back` +
      (dropped ? `, ${dropped} dropped` : ""),
  );
}
