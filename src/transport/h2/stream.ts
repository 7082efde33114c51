/**
 * HTTP/2 streams as Conns, and the session settings shared by both sides.
 *
 * A stream's write side ends with END_STREAM (`closeWrite`). `close` does not reset a stream
 * whose data may still be queued (RST_STREAM drops it): it ends the write side and lets the
 * stream finish, resetting it only if the peer has not finished within a grace period.
 */
import type * as http2 from "node:http2";
import type { Addr, Conn } from "../../core/conn.ts";
import { DuplexConn } from "../../core/duplex.ts";

/**
 * Larger flow-control windows than HTTP/2's 64 KiB default: one stream then fills a fast link
 * instead of waiting for WINDOW_UPDATEs (Go uses 4 MiB per stream, 1 GiB per connection).
 */
export const H2_SETTINGS: http2.Settings = { initialWindowSize: 4 << 20 };
const SESSION_WINDOW = 32 << 20;

/** Widens the session's receive window once it is up. */
export function tuneSession(s: http2.Http2Session): void {
  try {
    s.setLocalWindowSize(SESSION_WINDOW);
  } catch {
    // the session is already closing
  }
}

/** How long a closed stream may take to finish before it is reset. */
const CLOSE_GRACE = 5_000;

/** An HTTP/2 stream (client or server side) as a Conn. */
export class H2StreamConn implements Conn {
  private readonly inner: DuplexConn;
  private closed = false;

  /** `onClose` runs once the stream is gone (e.g. to end a session made for this stream). */
  constructor(
    readonly stream: http2.Http2Stream,
    addrs: { localAddr: Addr; remoteAddr: Addr },
    private readonly onClose?: () => void,
  ) {
    this.inner = new DuplexConn(stream, addrs);
    if (onClose) stream.once("close", onClose);
  }

  get localAddr(): Addr {
    return this.inner.localAddr;
  }
  get remoteAddr(): Addr {
    return this.inner.remoteAddr;
  }
  read(p: Uint8Array): Promise<number | null> {
    return this.inner.read(p);
  }
  write(p: Uint8Array): Promise<number> {
    return this.inner.write(p);
  }
  closeWrite(): Promise<void> {
    return this.inner.closeWrite();
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeStream(this.stream);
  }
}

/** Ends a stream's write side and resets it only if it has not closed after a grace period. */
export function closeStream(stream: http2.Http2Stream): void {
  if (stream.closed || stream.destroyed) return;
  if (!stream.writableEnded) stream.end();
  stream.resume(); // drop what still arrives, so the peer's END_STREAM can be seen
  const t = setTimeout(() => stream.destroy(), CLOSE_GRACE);
  stream.once("close", () => clearTimeout(t));
}
