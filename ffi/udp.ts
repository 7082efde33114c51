/**
 * UDP sockets made with libc through FFI: the fast path of dost's UDP listener and direct UDP
 * upstreams. Deno's `DatagramConn` costs one async op per receive and per send (~7 µs of CPU
 * each); here one off-thread `poll` waits for *all* FFI sockets at once, and a readable socket is
 * drained with synchronous `recvmmsg` calls (16 datagrams a call), each datagram pushed to the
 * socket's consumer without an await. Sends are synchronous `sendto` (a UDP send rarely blocks; on EAGAIN
 * the send waits for POLLOUT). Consumers that answer *while* a drain pushes to them (`sendSync`)
 * have their datagrams copied into one shared batch, sent with `sendmmsg` when the poll round
 * ends: one syscall per burst instead of one per datagram.
 *
 * The shared poll has a timeout (a pending FFI call cannot be cancelled and keeps the process
 * alive) and an eventfd in its set, written to when a socket is added or closed, so a change
 * takes effect at once and the poll loop ends as soon as no socket is left.
 */
import { EAFNOSUPPORT, EAGAIN, EINTR, errno, errnoError, type Libc, libc } from "./libc.ts";
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from "../src/core/ip.ts";

const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const IPPROTO_IPV6 = 41;
const IPV6_V6ONLY = 26;
const POLLIN = 0x1;
const POLLOUT = 0x4;
const EFD_NONBLOCK = 0o4000;
const EFD_CLOEXEC = 0o2000000;
/** Upper bound of one shared poll (ms): bounds how long a stale poll can outlive its sockets. */
const POLL_TIMEOUT_MS = 200;
/** Rounds drained back to back (readiness checked on the JS thread) before a real poll. */
const MAX_BUSY_ROUNDS = 8;
/** Datagrams queued for `receive()` when no consumer is set; more are dropped. */
const RECEIVE_QUEUE = 256;
/** How often a send that hit EAGAIN waits for POLLOUT before giving up on the datagram. */
const SEND_RETRIES = 5;

/** True when FFI UDP sockets can be used in this process (`--allow-ffi` and libc present). */
export function ffiUdpAvailable(): boolean {
  return libc() !== null;
}

/** Consumer of pushed datagrams: `data` is a view valid only during the call (copy to keep). */
export type DatagramHandler = (data: Uint8Array, from: Deno.NetAddr) => void;

/** A receive error other than EAGAIN/EINTR (the datagram is lost; the socket keeps serving). */
export type ErrorHandler = (e: Error) => void;

/**
 * One UDP socket. Either set a consumer with `onDatagram` (push mode, the fast path) or call
 * `receive` (the `Deno.DatagramConn` surface; datagrams are queued until read).
 */
export class FfiUdpSocket {
  /** The bound local address (port resolved when 0 was asked). */
  readonly addr: Deno.NetAddr;
  /** AF_INET or AF_INET6. */
  private readonly family: number;
  private closed = false;
  /** Longest datagram kept whole (longer ones are truncated). */
  private readonly bufferSize: number;
  /** Reused sockaddr_in6-sized buffer: the target of sends. */
  private readonly to = new Uint8Array(28);
  private readonly toView = new DataView(this.to.buffer);
  private toLen = 0;
  /** The NetAddr of the previous sender/target, reused while it stays the same. */
  private lastFrom?: Deno.NetAddr;
  private lastTo?: Deno.NetAddr;
  private handler?: DatagramHandler;
  private errorHandler?: ErrorHandler;
  private readonly queue: [Uint8Array, Deno.NetAddr][] = [];
  private waiter?: { resolve: (v: [Uint8Array, Deno.NetAddr]) => void; reject: (e: Error) => void };

  private constructor(
    private readonly lib: Libc,
    readonly fd: number,
    family: number,
    bufferSize: number,
  ) {
    this.family = family;
    this.bufferSize = Math.min(bufferSize, SLOT_SIZE);
    const sa = new Uint8Array(28);
    const len = new Uint32Array([28]);
    if (lib.getsockname(fd, sa, len) < 0) {
      const e = errnoError("getsockname", errno());
      lib.close(fd);
      throw e;
    }
    this.addr = decodeSockaddr(new DataView(sa.buffer));
  }

  /**
   * Opens a UDP socket bound to `ip:port` (an IP literal; "" = all interfaces: dual-stack `::`,
   * or `0.0.0.0` on hosts without IPv6). `bufferSize` bounds a received datagram (longer ones are
   * truncated). Throws Deno.errors.AddrInUse etc. like Deno.listenDatagram.
   */
  static bind(ip: string, port: number, bufferSize = 65535): FfiUdpSocket {
    const lib = libc();
    if (!lib) throw new Error("FFI UDP sockets are not available");
    if (ip === "") {
      try {
        return FfiUdpSocket.bind("::", port, bufferSize);
      } catch (e) {
        if (e instanceof Deno.errors.AddrInUse || e instanceof Deno.errors.PermissionDenied) {
          throw e;
        }
        return FfiUdpSocket.bind("0.0.0.0", port, bufferSize);
      }
    }
    const v4 = parseIPv4(ip);
    const v6 = v4 ? null : parseIPv6(ip);
    if (!v4 && !v6) throw new Error(`FFI UDP bind: ${ip} is not an IP address`);
    const family = v4 ? AF_INET : AF_INET6;
    const fd = lib.socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw errnoError(`socket(${v4 ? "AF_INET" : "AF_INET6"})`, errno());
    const sa = new Uint8Array(28);
    const view = new DataView(sa.buffer);
    let len: number;
    if (v4) {
      view.setUint16(0, AF_INET, true);
      view.setUint16(2, port);
      sa.set(v4, 4);
      len = 16;
    } else {
      // Dual-stack like Deno's `::` socket, whatever net.ipv6.bindv6only says.
      if (ip === "::") lib.setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, new Int32Array([0]), 4);
      view.setUint16(0, AF_INET6, true);
      view.setUint16(2, port);
      sa.set(v6!, 8);
      len = 28;
    }
    if (lib.bind(fd, sa, len) < 0) {
      const e = errnoError(`bind ${ip}:${port}`, errno());
      lib.close(fd);
      throw e;
    }
    return new FfiUdpSocket(lib, fd, family, bufferSize);
  }

  /** Push mode: every datagram is handed to `fn` as it is drained (no queue, no await). */
  onDatagram(fn: DatagramHandler, onError?: ErrorHandler): void {
    this.handler = fn;
    this.errorHandler = onError;
    reactor.add(this);
  }

  /** The next datagram (copied into `buf` when given) and its sender; rejects once closed. */
  receive(buf?: Uint8Array): Promise<[Uint8Array, Deno.NetAddr]> {
    if (this.closed) return Promise.reject(new Deno.errors.BadResource("udp socket is closed"));
    if (!this.handler) reactor.add(this);
    const q = this.queue.shift();
    if (q) return Promise.resolve(intoBuf(q, buf));
    return new Promise((resolve, reject) => {
      this.waiter = { resolve: (v) => resolve(intoBuf(v, buf)), reject };
    });
  }

  /**
   * Sends `p` as one datagram to `addr` (an IP literal; IPv4 on an IPv6 socket goes as
   * ::ffff:a.b.c.d). Synchronous unless the send buffer is full.
   */
  send(p: Uint8Array, addr: Deno.NetAddr): Promise<number> {
    if (this.closed) return Promise.reject(new Deno.errors.BadResource("udp socket is closed"));
    if (outbox.size) outbox.flush(); // keep this socket's datagrams in order
    try {
      if (addr !== this.lastTo) this.encodeTo(addr);
    } catch (e) {
      return Promise.reject(e);
    }
    const n = Number(this.lib.sendto(this.fd, p, BigInt(p.length), 0, this.to, this.toLen));
    if (n >= 0) return Promise.resolve(n);
    const code = errno();
    if (code === EAGAIN || code === EINTR) return this.sendSlow(p, addr);
    return Promise.reject(errnoError(`sendto ${addr.hostname}:${addr.port}`, code));
  }

  /**
   * Sends `p` to `addr` without a promise: during a poll round (a consumer answering a pushed
   * datagram) it is copied into the shared outbox and goes out with `sendmmsg` when the round
   * ends; otherwise it is sent at once. A datagram that cannot be sent is reported to
   * `onSendError` (set with `onDatagram`) and dropped. Throws BadResource once closed.
   */
  sendSync(p: Uint8Array, addr: Deno.NetAddr): void {
    if (this.closed) throw new Deno.errors.BadResource("udp socket is closed");
    if (addr !== this.lastTo) this.encodeTo(addr);
    if (inRound && p.length <= OUT_SLOT) {
      outbox.add(this, p, this.to, this.toLen, addr);
      return;
    }
    if (outbox.size) outbox.flush();
    const n = Number(this.lib.sendto(this.fd, p, BigInt(p.length), 0, this.to, this.toLen));
    if (n < 0) this.sendFailed(p, addr, errno());
  }

  /** A send that failed with `code`: EAGAIN waits for POLLOUT (on a copy), others are reported. */
  sendFailed(p: Uint8Array, addr: Deno.NetAddr, code: number): void {
    if (code === EAGAIN || code === EINTR) {
      this.sendSlow(p.slice(), addr).catch((e) => this.reportSendError(e));
    } else this.reportSendError(errnoError(`sendto ${addr.hostname}:${addr.port}`, code));
  }

  private reportSendError(e: Error): void {
    if (!this.closed) this.errorHandler?.(e);
  }

  /** The send buffer is full: wait for POLLOUT (a few times) and retry. */
  private async sendSlow(p: Uint8Array, addr: Deno.NetAddr): Promise<number> {
    const pfd = new Uint8Array(8);
    const v = new DataView(pfd.buffer);
    for (let i = 0; i < SEND_RETRIES; i++) {
      v.setInt32(0, this.fd, true);
      v.setInt16(4, POLLOUT, true);
      await this.lib.poll(pfd, 1n, 50);
      if (this.closed) throw new Deno.errors.BadResource("udp socket is closed");
      if (addr !== this.lastTo) this.encodeTo(addr);
      const n = Number(this.lib.sendto(this.fd, p, BigInt(p.length), 0, this.to, this.toLen));
      if (n >= 0) return n;
      const code = errno();
      if (code !== EAGAIN && code !== EINTR) {
        throw errnoError(`sendto ${addr.hostname}:${addr.port}`, code);
      }
    }
    throw new Error(`sendto ${addr.hostname}:${addr.port}: send buffer full, datagram dropped`);
  }

  /** Encodes `addr` into the reused sockaddr buffer for this socket's family. */
  private encodeTo(addr: Deno.NetAddr): void {
    const v4 = parseIPv4(addr.hostname);
    const v6 = v4 ? null : parseIPv6(addr.hostname);
    if (!v4 && !v6) throw new Error(`sendto: ${addr.hostname} is not an IP address`);
    const to = this.to, view = this.toView;
    to.fill(0);
    if (this.family === AF_INET) {
      let ip = v4;
      if (
        !ip && v6!.subarray(0, 10).every((b) => b === 0) && v6![10] === 0xff && v6![11] === 0xff
      ) {
        ip = v6!.subarray(12, 16);
      }
      if (!ip) throw errnoError(`sendto ${addr.hostname} from an IPv4 socket`, EAFNOSUPPORT);
      view.setUint16(0, AF_INET, true);
      view.setUint16(2, addr.port);
      to.set(ip, 4);
      this.toLen = 16;
    } else {
      view.setUint16(0, AF_INET6, true);
      view.setUint16(2, addr.port);
      if (v4) {
        to[18] = 0xff;
        to[19] = 0xff;
        to.set(v4, 20);
      } else to.set(v6!, 8);
      this.toLen = 28;
    }
    this.lastTo = addr;
  }

  /**
   * Called by the reactor when poll says readable: recvmmsg into the shared batch until a call
   * returns less than a full batch (the queue is then empty), pushing each datagram to the
   * consumer, which copies what it keeps before the next call reuses the batch.
   */
  drain(): void {
    const lib = this.lib, b = batch();
    b.setSlotSize(this.bufferSize);
    while (!this.closed) {
      b.resetNames();
      const n = lib.recvmmsg(this.fd, b.hdrs, BATCH, 0, null);
      if (n < 0) {
        const code = errno();
        if (code === EINTR) continue;
        if (code === EAGAIN) return;
        // An error concerns one datagram (e.g. a queued ICMP error); poll wakes us for the rest.
        this.errorHandler?.(
          errnoError(`recvmmsg on ${this.addr.hostname}:${this.addr.port}`, code),
        );
        return;
      }
      for (let i = 0; i < n && !this.closed; i++) {
        const sender = this.sender(b.nameView, i * NAME_SIZE);
        const off = i * SLOT_SIZE;
        const data = b.data.subarray(off, off + b.hdrView.getUint32(i * MMSGHDR_SIZE + 56, true));
        this.push(data, sender);
      }
      if (n < BATCH) return;
    }
  }

  private push(data: Uint8Array, sender: Deno.NetAddr): void {
    if (this.handler) {
      try {
        this.handler(data, sender);
      } catch (e) {
        // A consumer bug must not stop the shared poll loop.
        this.errorHandler?.(e instanceof Error ? e : new Error(String(e)));
      }
    } else if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve([data.slice(), sender]);
    } else if (this.queue.length < RECEIVE_QUEUE) {
      this.queue.push([data.slice(), sender]);
    }
  }

  /** The sender in the sockaddr at `off`, reusing the previous NetAddr while it stays the same. */
  private sender(v: DataView, off: number): Deno.NetAddr {
    const last = this.lastFrom, words = this.lastFromWords;
    if (last) {
      const n = v.getUint16(off, true) === AF_INET ? 2 : 6;
      let same = true;
      for (let i = 0; i < n && same; i++) same = v.getUint32(off + i * 4) === words[i];
      if (same) return last;
    }
    const a = decodeSockaddr(v, off);
    for (let i = 0; i < 6; i++) words[i] = v.getUint32(off + i * 4);
    this.lastFrom = a;
    return a;
  }
  private readonly lastFromWords = new Uint32Array(6);

  /** Closes the socket; a pending `receive` rejects with BadResource. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    reactor.remove(this);
    this.lib.close(this.fd);
    this.queue.length = 0;
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(new Deno.errors.BadResource("udp socket is closed"));
  }

  /** True once closed. */
  get isClosed(): boolean {
    return this.closed;
  }
}

function intoBuf(v: [Uint8Array, Deno.NetAddr], buf?: Uint8Array): [Uint8Array, Deno.NetAddr] {
  if (!buf) return v;
  const n = Math.min(v[0].length, buf.length);
  buf.set(v[0].subarray(0, n));
  return [buf.subarray(0, n), v[1]];
}

/** sockaddr_in / sockaddr_in6 at `off` → NetAddr (IPv4-mapped IPv6 is reported as IPv4). */
function decodeSockaddr(v: DataView, off = 0): Deno.NetAddr {
  const b = new Uint8Array(v.buffer, v.byteOffset + off, NAME_SIZE);
  const fam = v.getUint16(off, true);
  const port = v.getUint16(off + 2);
  const hostname = fam === AF_INET ? formatIPv4(b.subarray(4, 8)) : formatIPv6(b.subarray(8, 24));
  return { transport: "udp", hostname, port };
}

// struct mmsghdr (x86_64/aarch64): msghdr { name ptr @0, namelen u32 @8, iov ptr @16,
// iovlen @24, control ptr @32, controllen @40, flags @48 } then msg_len u32 @56; 64 bytes.
const MMSGHDR_SIZE = 64;
const IOVEC_SIZE = 16;
const NAME_SIZE = 28;
/** Datagrams per recvmmsg call. */
const BATCH = 16;
/** Bytes per datagram slot: the largest UDP payload. */
const SLOT_SIZE = 65535;

/**
 * The receive batch shared by every FFI socket (drains are synchronous and consumers copy what
 * they keep): BATCH mmsghdrs, each with one iovec onto its slot and a sockaddr buffer. The
 * buffers are module-owned for the process lifetime, so the pointers written into the headers
 * stay valid.
 */
class Batch {
  readonly data = new Uint8Array(BATCH * SLOT_SIZE);
  readonly names = new Uint8Array(BATCH * NAME_SIZE);
  readonly nameView = new DataView(this.names.buffer);
  readonly hdrs = new Uint8Array(BATCH * MMSGHDR_SIZE);
  readonly hdrView = new DataView(this.hdrs.buffer);
  private readonly iovs = new Uint8Array(BATCH * IOVEC_SIZE);
  private readonly iovView = new DataView(this.iovs.buffer);
  private slotSize = -1;

  constructor() {
    const data = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(this.data)));
    const names = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(this.names)));
    const iovs = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(this.iovs)));
    for (let i = 0; i < BATCH; i++) {
      const h = i * MMSGHDR_SIZE;
      this.hdrView.setBigUint64(h, names + BigInt(i * NAME_SIZE), true);
      this.hdrView.setBigUint64(h + 16, iovs + BigInt(i * IOVEC_SIZE), true);
      this.hdrView.setBigUint64(h + 24, 1n, true);
      this.iovView.setBigUint64(i * IOVEC_SIZE, data + BigInt(i * SLOT_SIZE), true);
    }
    this.setSlotSize(SLOT_SIZE);
  }

  /** Sets every iovec's length (a socket's readBufferSize truncates like recvfrom would). */
  setSlotSize(n: number): void {
    if (n === this.slotSize) return;
    for (let i = 0; i < BATCH; i++) this.iovView.setBigUint64(i * IOVEC_SIZE + 8, BigInt(n), true);
    this.slotSize = n;
  }

  /** msg_namelen is in/out: restore the buffer size before each call. */
  resetNames(): void {
    for (let i = 0; i < BATCH; i++) this.hdrView.setUint32(i * MMSGHDR_SIZE + 8, NAME_SIZE, true);
  }
}

let sharedBatch: Batch | undefined;
function batch(): Batch {
  return sharedBatch ??= new Batch();
}

/** Datagrams the outbox holds before it sends (one sendmmsg per socket run). */
const OUT_BATCH = 64;
/** Outbox slot size: larger datagrams are sent at once with sendto. */
const OUT_SLOT = 2048;

/** True while the reactor drains sockets: `sendSync` then queues into the outbox. */
let inRound = false;

/**
 * Datagrams queued by `sendSync` during a poll round, sent when the round ends (or the outbox
 * fills) with one `sendmmsg` per run of datagrams for the same socket. Shared by every socket and
 * owned by the module, so the pointers in its headers stay valid.
 */
class Outbox {
  private readonly data = new Uint8Array(OUT_BATCH * OUT_SLOT);
  private readonly names = new Uint8Array(OUT_BATCH * NAME_SIZE);
  private readonly hdrs = new Uint8Array(OUT_BATCH * MMSGHDR_SIZE);
  private readonly hdrView = new DataView(this.hdrs.buffer);
  private readonly iovs = new Uint8Array(OUT_BATCH * IOVEC_SIZE);
  private readonly iovView = new DataView(this.iovs.buffer);
  private readonly socks: FfiUdpSocket[] = [];
  private readonly dests: Deno.NetAddr[] = [];
  private readonly hdrBase: bigint;
  /** Datagrams queued. */
  size = 0;

  constructor() {
    const data = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(this.data)));
    const names = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(this.names)));
    const iovs = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(this.iovs)));
    this.hdrBase = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(this.hdrs)));
    for (let i = 0; i < OUT_BATCH; i++) {
      const h = i * MMSGHDR_SIZE;
      this.hdrView.setBigUint64(h, names + BigInt(i * NAME_SIZE), true);
      this.hdrView.setBigUint64(h + 16, iovs + BigInt(i * IOVEC_SIZE), true);
      this.hdrView.setBigUint64(h + 24, 1n, true);
      this.iovView.setBigUint64(i * IOVEC_SIZE, data + BigInt(i * OUT_SLOT), true);
    }
  }

  /** Queues a copy of `p` for `sock` to the encoded sockaddr `to` (`toLen` bytes). */
  add(sock: FfiUdpSocket, p: Uint8Array, to: Uint8Array, toLen: number, dest?: Deno.NetAddr) {
    const i = this.size++;
    this.data.set(p, i * OUT_SLOT);
    this.names.set(to.subarray(0, toLen), i * NAME_SIZE);
    this.hdrView.setUint32(i * MMSGHDR_SIZE + 8, toLen, true);
    this.iovView.setBigUint64(i * IOVEC_SIZE + 8, BigInt(p.length), true);
    this.socks[i] = sock;
    if (dest) this.dests[i] = dest;
    if (this.size === OUT_BATCH) this.flush();
  }

  /** Sends everything queued: one sendmmsg per run of datagrams for the same socket. */
  flush(): void {
    const n = this.size;
    this.size = 0;
    const lib = libc()!;
    for (let start = 0; start < n;) {
      const sock = this.socks[start];
      let end = start + 1;
      while (end < n && this.socks[end] === sock) end++;
      let i = start;
      while (i < end && !sock.isClosed) {
        // sendmmsg reads the headers from `start`: pass a pointer into the header array.
        const hdrs = Deno.UnsafePointer.create(this.hdrBase + BigInt(i * MMSGHDR_SIZE));
        const sent = lib.sendmmsgPtr(sock.fd, hdrs, end - i, 0);
        if (sent > 0) {
          i += sent;
          continue;
        }
        // The datagram at `i` failed: EAGAIN waits for room (on a copy), others drop it.
        const len = Number(this.iovView.getBigUint64(i * IOVEC_SIZE + 8, true));
        sock.sendFailed(
          this.data.subarray(i * OUT_SLOT, i * OUT_SLOT + len),
          this.dests[i] ?? sock.addr,
          errno(),
        );
        i++;
      }
      start = end;
    }
    this.socks.fill(undefined as unknown as FfiUdpSocket, 0, n);
  }
}

/** Created on first use: FFI pointers need --allow-ffi, which plain runs do not grant. */
let sharedOutbox: Outbox | undefined;
const outbox = {
  get size(): number {
    return sharedOutbox?.size ?? 0;
  },
  add(sock: FfiUdpSocket, p: Uint8Array, to: Uint8Array, toLen: number, dest?: Deno.NetAddr) {
    (sharedOutbox ??= new Outbox()).add(sock, p, to, toLen, dest);
  },
  flush(): void {
    sharedOutbox?.flush();
  },
};

/**
 * The single poll loop over every open FFI socket: pollfd[0] is an eventfd that wakes the poll
 * when the set changes; the loop runs only while sockets exist.
 */
class Reactor {
  private readonly socks = new Set<FfiUdpSocket>();
  private running = false;
  private dirty = true;
  private efd = -1;
  private readonly one = new BigUint64Array([1n]);
  private readonly eight = new Uint8Array(8);

  add(s: FfiUdpSocket): void {
    if (this.socks.has(s)) return;
    this.socks.add(s);
    this.changed();
    if (!this.running) void this.loop();
  }

  remove(s: FfiUdpSocket): void {
    if (this.socks.delete(s)) this.changed();
  }

  private changed(): void {
    this.dirty = true;
    if (this.running && this.efd >= 0) libc()!.write(this.efd, this.one, 8n);
  }

  private async loop(): Promise<void> {
    const lib = libc()!;
    this.running = true;
    if (this.efd < 0) this.efd = lib.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    let pfds = new Uint8Array(0);
    let view = new DataView(pfds.buffer);
    let list: FfiUdpSocket[] = [];
    let busyRounds = 0;
    try {
      while (this.socks.size > 0) {
        if (this.dirty) {
          this.dirty = false;
          list = [...this.socks];
          pfds = new Uint8Array((list.length + 1) * 8);
          view = new DataView(pfds.buffer);
          view.setInt32(0, this.efd, true);
          view.setInt16(4, POLLIN, true);
          for (let i = 0; i < list.length; i++) {
            view.setInt32((i + 1) * 8, list[i].fd, true);
            view.setInt16((i + 1) * 8 + 4, POLLIN, true);
          }
        }
        const count = BigInt(list.length + 1);
        // After a busy round, let the consumers run (their sends are synchronous), then check
        // readiness on this thread: datagrams that arrived meanwhile are drained without the
        // off-thread poll's two thread hand-overs. Bounded, so timers and other I/O still run.
        let n = 0;
        if (busyRounds > 0 && busyRounds < MAX_BUSY_ROUNDS) {
          await null;
          if (this.dirty) continue;
          n = lib.pollNow(pfds, count, 0);
        }
        if (n > 0) busyRounds++;
        else {
          n = await lib.poll(pfds, count, POLL_TIMEOUT_MS);
          busyRounds = n > 0 ? 1 : 0;
        }
        if (n <= 0) continue;
        if (view.getInt16(6, true) !== 0) lib.read(this.efd, this.eight, 8n);
        inRound = true;
        try {
          for (let i = 0; i < list.length; i++) {
            // POLLERR/POLLHUP count too: recvfrom then reports the error.
            if (view.getInt16((i + 1) * 8 + 6, true) !== 0 && !list[i].isClosed) list[i].drain();
          }
        } finally {
          inRound = false;
          if (outbox.size) outbox.flush();
        }
      }
    } finally {
      this.running = false;
    }
  }
}

const reactor = new Reactor();
