/**
 * Shadowsocks UDP client (`-F ssu://method:password@host:port`, over the `udp` dialer): each
 * datagram to the target goes as one sealed packet `salt ‖ AEAD(target address ‖ payload)`;
 * replies are opened and stripped of their source address. Over a stream transport
 * (`ssu+tcp`, `ssu+tls`, `ssu+ws`, …) datagrams travel as gost's UDP-TUN frames inside one
 * shadowsocks AEAD stream, as gost's ssu connector sends them.
 */
import { BufferedConn } from "../../core/bufconn.ts";
import { type Addr, type Conn, splitHostPort } from "../../core/conn.ts";
import { ConfigError, ProtocolError } from "../../core/errors.ts";
import { DATAGRAM_TRANSPORTS, registerConnector } from "../../registry.ts";
import { encodeAddr } from "../socks/addr.ts";
import { isDatagramConn } from "../../transport/udp/dialer.ts";
import {
  type DatagramPort,
  MAX_DATAGRAM,
  portOf,
  readDatagramInto,
} from "../../transport/udp/relay.ts";
import { UdpTunConn } from "../socks5/udp_tun.ts";
import { ssCipher } from "./cipher.ts";
import { checkPacketMethod, type PacketCodec, SsPacketCodec } from "./packet.ts";
import { Ss2022UdpClient } from "./packet2022.ts";
import { SsStreamConn } from "./stream.ts";

/**
 * A message-preserving Conn to one target through an ssu server. Over an FFI socket it is also
 * a DatagramPort: packets are sealed and opened inside the socket's receive round.
 */
export class SsuClientConn implements Conn, DatagramPort {
  private buf?: Uint8Array;
  constructor(
    private readonly inner: Conn,
    private readonly codec: PacketCodec,
    private readonly target: Uint8Array,
  ) {}

  get localAddr(): Addr {
    return this.inner.localAddr;
  }
  get remoteAddr(): Addr {
    return this.inner.remoteAddr;
  }

  datagramPort(): DatagramPort | undefined {
    return portOf(this.inner) ? this : undefined;
  }

  pushTo(fn: (d: Uint8Array) => void, onEnd: () => void, onError: (e: Error) => void): void {
    portOf(this.inner)!.pushTo(
      (d) => {
        let payload: Uint8Array;
        try {
          payload = this.codec.open(d).payload;
        } catch {
          return; // not for us (or tampered): UDP drops it
        }
        fn(payload);
      },
      onEnd,
      onError,
    );
  }

  sendSync(p: Uint8Array): void {
    portOf(this.inner)!.sendSync(this.codec.seal(this.target, p));
  }

  /** The next datagram from the target (packets that do not open are skipped); null at end. */
  async readDatagram(): Promise<Uint8Array | null> {
    const rd = (this.inner as { readDatagram?: () => Promise<Uint8Array | null> }).readDatagram;
    for (;;) {
      let d: Uint8Array | null;
      if (typeof rd === "function") d = await rd.call(this.inner);
      else {
        this.buf ??= new Uint8Array(MAX_DATAGRAM);
        const n = await this.inner.read(this.buf);
        d = n === null ? null : this.buf.subarray(0, n);
      }
      if (d === null) return null;
      try {
        return this.codec.open(d).payload.slice(); // the codec reuses its buffer
      } catch { /* not for us (or tampered): UDP drops it */ }
    }
  }

  read(p: Uint8Array): Promise<number | null> {
    return readDatagramInto(this, p);
  }

  async write(p: Uint8Array): Promise<number> {
    await this.inner.write(this.codec.seal(this.target, p).slice()); // the codec reuses its buffer
    return p.length;
  }

  closeWrite(): Promise<void> {
    return Promise.resolve();
  }

  close(): void {
    this.inner.close();
  }
}

registerConnector("ssu", (o) => {
  const where = `node ${o.node}`;
  if (!o.auth) {
    throw new ConfigError(
      `${where}: shadowsocks needs method:password (ssu://method:password@host:port)`,
    );
  }
  const cipher = ssCipher(o.auth.username, o.auth.password ?? "", where, o.params.str("key"));
  checkPacketMethod(cipher, where);
  const is2022 = cipher.method.kind === "2022";
  if (is2022 && !DATAGRAM_TRANSPORTS.has(o.transport ?? "udp")) {
    throw new ConfigError(
      `${where}: ssu with ${cipher.method.name} runs over UDP only (gost has no 2022 UDP-over-TCP)`,
    );
  }
  // SIP004 packets are independent; a 2022 client is a session (its own ID and counter).
  const shared = is2022 ? undefined : new SsPacketCodec(cipher);
  return {
    connect(conn: Conn, network, address) {
      if (network !== "udp") {
        return Promise.reject(
          new ProtocolError(`${where}: ssu carries UDP only (use ss:// for TCP)`),
        );
      }
      const { host, port } = splitHostPort(address);
      if (!isDatagramConn(conn)) {
        // UDP over a stream: UDP-TUN frames in a shadowsocks stream of our own salt.
        const stream = cipher.method.kind === "none" ? conn : new SsStreamConn(conn, cipher);
        return Promise.resolve(new UdpTunConn(new BufferedConn(stream), host, port));
      }
      const codec = shared ?? new Ss2022UdpClient(cipher);
      return Promise.resolve(new SsuClientConn(conn, codec, encodeAddr(host, port)));
    },
  };
});
