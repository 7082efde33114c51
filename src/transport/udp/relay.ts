/**
 * `relayDatagrams(a, b)`: copies datagrams both ways between two message-preserving Conns (one
 * read = one datagram) until either side ends, then closes both. Unlike the stream relay it
 * never splits or merges reads (its buffers hold a whole datagram), has no half-close, and a
 * failed send loses that datagram only: UDP is lossy, so one unroutable datagram must not end
 * the session.
 */
import { closeQuietly, type Conn } from "../../core/conn.ts";
import { errMsg } from "../../core/errors.ts";

/** Largest UDP payload plus room for a SOCKS header: reads never truncate. */
export const MAX_DATAGRAM = 65535;

/** Datagram counts of a finished relay. */
export interface DatagramStats {
  /** Datagrams copied from a to b. */
  aToB: number;
  /** Datagrams copied from b to a. */
  bToA: number;
  /** Datagrams that could not be sent (either way). */
  dropped: number;
  /** The first send error, for the session's log line. */
  firstError?: string;
}

function isClosed(e: unknown): boolean {
  return e instanceof Deno.errors.BadResource || e instanceof Deno.errors.Interrupted;
}

/**
 * Optional fast path of a message-preserving Conn: the next datagram as a view that stays valid
 * until the next call, or null once closed. Lets the relay skip its own 64 KiB buffer (memory
 * per idle session) and a copy per datagram.
 */
export interface DatagramSource {
  readDatagram(): Promise<Uint8Array | null>;
}

/** `read(p)` of a message-preserving Conn: its next datagram, cut to `p`; null at the end. */
export async function readDatagramInto(
  src: DatagramSource,
  p: Uint8Array,
): Promise<number | null> {
  const d = await src.readDatagram();
  if (d === null) return null;
  const n = Math.min(d.length, p.length);
  p.set(n === d.length ? d : d.subarray(0, n));
  return n;
}

/**
 * The synchronous fast path of a message-preserving Conn whose socket pushes datagrams as they
 * are drained and sends without a promise (FFI sockets): a relay between two such conns moves
 * each datagram inside the receive call — no promise, no queue, no copy of its own.
 */
export interface DatagramPort {
  /**
   * Hands every datagram (queued ones first) to `fn` synchronously; the view is valid only during
   * the call. `onEnd` runs once when the conn closes; `onError` gets send failures.
   */
  pushTo(fn: (d: Uint8Array) => void, onEnd: () => void, onError: (e: Error) => void): void;
  /** Sends one datagram (possibly batched until the receive round ends); throws once closed. */
  sendSync(d: Uint8Array): void;
}

/** The conn's DatagramPort, when it has one usable now. */
export function portOf(c: Conn): DatagramPort | undefined {
  const f = (c as { datagramPort?: () => DatagramPort | undefined }).datagramPort;
  return typeof f === "function" ? f.call(c) : undefined;
}

/** Both conns push and send synchronously: wire them to each other until either closes. */
function relayPorts(
  a: Conn,
  pa: DatagramPort,
  b: Conn,
  pb: DatagramPort,
  st: DatagramStats,
): Promise<DatagramStats> {
  return new Promise((resolve) => {
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      closeQuietly(a);
      closeQuietly(b);
      resolve(st);
    };
    const dropped = (e: unknown) => {
      st.dropped++;
      st.firstError ??= errMsg(e);
    };
    pa.pushTo(
      (d) => {
        try {
          pb.sendSync(d);
          st.aToB++;
        } catch (e) {
          if (isClosed(e)) end();
          else dropped(e);
        }
      },
      end,
      dropped,
    );
    pb.pushTo(
      (d) => {
        try {
          pa.sendSync(d);
          st.bToA++;
        } catch (e) {
          if (isClosed(e)) end();
          else dropped(e);
        }
      },
      end,
      dropped,
    );
  });
}

function hasReadDatagram(c: Conn): c is Conn & DatagramSource {
  return typeof (c as Partial<DatagramSource>).readDatagram === "function";
}

/** A DatagramSource for any Conn: one read into a whole-datagram buffer. */
function viaRead(c: Conn): DatagramSource {
  let buf: Uint8Array | undefined;
  return {
    async readDatagram() {
      buf ??= new Uint8Array(MAX_DATAGRAM);
      const n = await c.read(buf);
      return n === null ? null : buf.subarray(0, n);
    },
  };
}

async function pump(src: Conn, dst: Conn, count: (ok: boolean, e?: unknown) => void) {
  const source = hasReadDatagram(src) ? src : viaRead(src);
  for (;;) {
    const d = await source.readDatagram();
    if (d === null) return;
    try {
      await dst.write(d);
      count(true);
    } catch (e) {
      if (isClosed(e)) return;
      count(false, e);
    }
  }
}

/** Relays until either side ends or fails; always closes both. Never rejects. */
export async function relayDatagrams(a: Conn, b: Conn): Promise<DatagramStats> {
  const st: DatagramStats = { aToB: 0, bToA: 0, dropped: 0 };
  const pa = portOf(a), pb = pa && portOf(b);
  if (pa && pb) return relayPorts(a, pa, b, pb, st);
  const counter = (dir: "aToB" | "bToA") => (ok: boolean, e?: unknown) => {
    if (ok) st[dir]++;
    else {
      st.dropped++;
      st.firstError ??= errMsg(e);
    }
  };
  const closeBoth = () => {
    closeQuietly(a);
    closeQuietly(b);
  };
  const ab = pump(a, b, counter("aToB")).catch(() => {}).finally(closeBoth);
  const ba = pump(b, a, counter("bToA")).catch(() => {}).finally(closeBoth);
  await Promise.all([ab, ba]);
  return st;
}
