/**
 * The FFI flavour of a direct UDP upstream (see UdpPeerConn in socket.ts): the socket pushes each
 * datagram as it is drained; the target's datagrams are queued (copies) for `readDatagram`, and
 * writes are synchronous sendto calls.
 */
import type { Addr, Conn } from "../../core/conn.ts";
import { normalizeIP } from "../../protocol/socks/addr.ts";
import type { FfiUdpSocket } from "../../../ffi/udp.ts";
import { copyDatagram } from "./slab.ts";
import type { DatagramPort } from "./relay.ts";
import { readDatagramInto } from "./relay.ts";

/** Datagrams from the target queued while the relay is busy sending; more are dropped. */
const QUEUE_LIMIT = 256;

/** A message-preserving Conn on an FFI UDP socket bound to one peer. */
export class FfiUdpPeerConn implements Conn, DatagramPort {
  private closed = false;
  private readonly peerIP: string;
  private readonly queue: Uint8Array[] = [];
  private reader?: (d: Uint8Array | null) => void;
  /** Push mode (a DatagramPort relay): datagrams go straight to `pushFn`. */
  private pushFn?: (d: Uint8Array) => void;
  private onEnd?: () => void;
  private onError?: (e: Error) => void;
  /** Last sender object that matched the peer (the socket reuses it while the sender is the same). */
  private matched?: Deno.NetAddr;

  constructor(private readonly sock: FfiUdpSocket, private readonly peer: Deno.NetAddr) {
    this.peerIP = normalizeIP(peer.hostname);
    sock.onDatagram((data, from) => this.deliver(data, from), (e) => this.onError?.(e));
  }

  get localAddr(): Addr {
    return this.sock.addr as Addr;
  }
  get remoteAddr(): Addr {
    return this.peer;
  }

  private deliver(data: Uint8Array, from: Deno.NetAddr): void {
    if (from !== this.matched) {
      // An unconnected socket hears anyone: a stray sender is simply ignored.
      if (from.port !== this.peer.port || normalizeIP(from.hostname) !== this.peerIP) return;
      this.matched = from;
    }
    if (this.pushFn) return this.pushFn(data);
    const r = this.reader;
    if (r) {
      this.reader = undefined;
      r(copyDatagram(data));
    } else if (this.queue.length < QUEUE_LIMIT) {
      this.queue.push(copyDatagram(data));
    }
  }

  datagramPort(): DatagramPort {
    return this;
  }

  pushTo(fn: (d: Uint8Array) => void, onEnd: () => void, onError: (e: Error) => void): void {
    this.onEnd = onEnd;
    this.onError = onError;
    for (let d; (d = this.queue.shift()) && !this.closed;) fn(d);
    if (this.closed) return onEnd();
    this.pushFn = fn;
  }

  sendSync(p: Uint8Array): void {
    if (this.closed) throw new Deno.errors.BadResource("udp socket is closed");
    this.sock.sendSync(p, this.peer);
  }

  /** The next datagram from the peer (owned by the caller); null once closed. */
  readDatagram(): Promise<Uint8Array | null> {
    const d = this.queue.shift();
    if (d) return Promise.resolve(d);
    if (this.closed) return Promise.resolve(null);
    return new Promise((r) => this.reader = r);
  }

  /** Reads one datagram from the peer into `p` (longer ones are truncated); null once closed. */
  read(p: Uint8Array): Promise<number | null> {
    return readDatagramInto(this, p);
  }

  write(p: Uint8Array): Promise<number> {
    if (this.closed) return Promise.reject(new Deno.errors.BadResource("udp socket is closed"));
    return this.sock.send(p, this.peer);
  }

  /** UDP has no half-close. */
  closeWrite(): Promise<void> {
    return Promise.resolve();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sock.close();
    this.queue.length = 0;
    const r = this.reader;
    this.reader = undefined;
    r?.(null);
    this.pushFn = undefined;
    this.onEnd?.();
  }
}
