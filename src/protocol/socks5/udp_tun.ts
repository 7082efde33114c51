/**
 * gost's UDP-over-TCP framing "UDP-TUN" (protocols.md §2.3), used after the SOCKS5 command
 * 0xF3: each datagram travels on the stream as RSV (BE u16 = data length) · FRAG (0xFF when
 * written) · SOCKS address · data. The address is the destination (client → server) or the
 * source (server → client). A frame with RSV 0 is an empty datagram (gost's "read whatever comes"
 * fallback for RSV 0 is not reproduced) and is never written.
 */
import { BufferedConn } from "../../core/bufconn.ts";
import { type Addr, closeQuietly, type Conn, type PacketConn, writeAll } from "../../core/conn.ts";
import { addrSize, readAddr, type SocksAddr, writeAddr } from "../socks/addr.ts";
import { readDatagramInto } from "../../transport/udp/relay.ts";

/** The SOCKS5 command that opens a UDP-TUN (gost extension). */
export const CMD_UDP_TUN = 0xf3;
/** FRAG value writers put in a UDP-TUN frame. */
export const UDP_TUN_FRAG = 0xff;

/** One frame as bytes (header + data), ready for a single write. */
export function encodeUdpTunFrame(host: string, port: number, data: Uint8Array): Uint8Array {
  if (data.length > 0xffff) throw new RangeError(`datagram of ${data.length} bytes is too long`);
  const out = new Uint8Array(3 + addrSize(host) + data.length);
  out[0] = data.length >> 8;
  out[1] = data.length & 0xff;
  out[2] = UDP_TUN_FRAG;
  out.set(data, writeAddr(out, 3, host, port));
  return out;
}

/** A decoded frame. */
export interface UdpTunFrame {
  addr: SocksAddr;
  data: Uint8Array;
}

/**
 * Reads one frame; null on a clean end of stream between frames. Throws ProtocolError on a
 * truncated frame or a bad address.
 */
export async function readUdpTunFrame(bc: BufferedConn): Promise<UdpTunFrame | null> {
  if ((await bc.peekSome()) === null) return null;
  const head = await bc.readFull(3);
  const len = (head[0] << 8) | head[1];
  const addr = await readAddr(bc);
  const data = len ? await bc.readFull(len) : new Uint8Array(0);
  return { addr, data };
}

/**
 * A PacketConn over a UDP-TUN stream: readFrom returns the next frame's datagram and address,
 * writeTo sends one frame. Writes are serialized (several sessions may share the stream).
 */
export class UdpTunPacketConn implements PacketConn {
  private readonly bc: BufferedConn;
  private writing: Promise<unknown> = Promise.resolve();
  private closed = false;

  /** `local` is what localAddr reports (the socket the far end bound). */
  constructor(conn: Conn, private readonly local: Addr) {
    this.bc = conn instanceof BufferedConn ? conn : new BufferedConn(conn);
  }

  get localAddr(): Addr {
    return this.local;
  }

  /** The stream's peer (the SOCKS server). */
  get remoteAddr(): Addr {
    return this.bc.remoteAddr;
  }

  async readFrom(p: Uint8Array): Promise<[number, Addr] | null> {
    for (;;) {
      const f = await readUdpTunFrame(this.bc);
      if (!f) return null;
      if (f.data.length === 0) continue;
      const n = Math.min(p.length, f.data.length);
      p.set(n === f.data.length ? f.data : f.data.subarray(0, n));
      return [n, { transport: "udp", hostname: f.addr.host, port: f.addr.port }];
    }
  }

  writeTo(p: Uint8Array, to: Addr): Promise<number> {
    if (this.closed) return Promise.reject(new Deno.errors.BadResource("UDP-TUN stream is closed"));
    if (p.length === 0) return Promise.resolve(0);
    const frame = encodeUdpTunFrame(to.hostname, to.port, p);
    const w = this.writing.then(() => writeAll(this.bc, frame));
    this.writing = w.catch(() => {});
    return w.then(() => p.length);
  }

  close(): void {
    this.closed = true;
    closeQuietly(this.bc);
  }
}

/**
 * One UDP-TUN stream as a message-preserving Conn to one target (SOCKS5 0xF3, and ssu over a
 * stream transport, which frames datagrams the same way inside a shadowsocks stream).
 */
export class UdpTunConn implements Conn {
  readonly remoteAddr: Addr;
  constructor(private readonly bc: BufferedConn, private readonly host: string, port: number) {
    this.remoteAddr = { transport: "udp", hostname: host, port };
  }

  get localAddr(): Addr {
    return this.bc.localAddr;
  }

  /** The next datagram from the stream (empty frames skipped); null at its end. */
  async readDatagram(): Promise<Uint8Array | null> {
    for (;;) {
      const f = await readUdpTunFrame(this.bc);
      if (!f) return null;
      if (f.data.length > 0) return f.data;
    }
  }

  read(p: Uint8Array): Promise<number | null> {
    return readDatagramInto(this, p);
  }

  /** Sends `p` as one frame; an empty datagram cannot be framed (RSV 0) and is skipped. */
  async write(p: Uint8Array): Promise<number> {
    if (p.length === 0) return 0;
    await writeAll(this.bc, encodeUdpTunFrame(this.host, this.remoteAddr.port, p));
    return p.length;
  }

  closeWrite(): Promise<void> {
    return Promise.resolve();
  }

  close(): void {
    closeQuietly(this.bc);
  }
}
