/**
 * One gost gRPC tunnel stream (`Tunnel(stream Chunk) returns (stream Chunk)`) as a Conn: every
 * write is sent as Chunk messages, reads return the chunks' data.
 *
 * The client ends its side with END_STREAM. The server cannot half-close an RPC without ending
 * it, so its `closeWrite` ends the response with the trailers (`grpc-status: 0`, or 13 with a
 * message after a bad frame from the client).
 */
import type * as http2 from "node:http2";
import type { Addr, Conn } from "../../core/conn.ts";
import { DuplexConn } from "../../core/duplex.ts";
import { errMsg, ProtocolError } from "../../core/errors.ts";
import { closeStream } from "../h2/stream.ts";
import { decodeChunk, encodeChunk, MAX_CHUNK, parsePrefix } from "./codec.ts";

const BUF = 65536;

export class GrpcConn implements Conn {
  private readonly inner: DuplexConn;
  private readonly rbuf = new Uint8Array(BUF);
  private rpos = 0;
  private rend = 0;
  /** Data of the current message not yet returned. */
  private data: Uint8Array = new Uint8Array(0);
  private closed = false;
  /** A failure the peer reported in its status (client side), or our decoding error. */
  private failure: Error | undefined;
  /** Server side: the status sent in the trailers. */
  status = { code: 0, message: "" };

  constructor(
    readonly stream: http2.Http2Stream,
    addrs: { localAddr: Addr; remoteAddr: Addr },
    readonly side: "client" | "server",
    private readonly onClose?: () => void,
  ) {
    this.inner = new DuplexConn(stream, addrs);
    if (onClose) stream.once("close", onClose);
    if (side === "client") {
      const check = (h: http2.IncomingHttpHeaders) => {
        const st = h[":status"];
        if (st !== undefined && String(st) !== "200") {
          this.failure ??= new ProtocolError(`grpc: server answered HTTP ${st}`);
        }
        const gs = h["grpc-status"];
        if (gs !== undefined && String(gs) !== "0") {
          const msg = decodeURIComponentSafe(String(h["grpc-message"] ?? ""));
          this.failure ??= new ProtocolError(`grpc: status ${gs}${msg ? `: ${msg}` : ""}`);
        }
      };
      stream.on("response", check);
      stream.on("trailers", check);
    } else {
      stream.on("wantTrailers", () => {
        const t: http2.OutgoingHttpHeaders = { "grpc-status": String(this.status.code) };
        if (this.status.message) t["grpc-message"] = encodeURIComponent(this.status.message);
        try {
          (stream as http2.ServerHttp2Stream).sendTrailers(t);
        } catch {
          // the stream was reset meanwhile
        }
      });
    }
  }

  get localAddr(): Addr {
    return this.inner.localAddr;
  }
  get remoteAddr(): Addr {
    return this.inner.remoteAddr;
  }

  /** Reads at least `n` bytes into rbuf (n ≤ BUF); false at a clean end of stream. */
  private async fill(n: number): Promise<boolean> {
    if (this.rend - this.rpos >= n) return true;
    if (this.rpos > 0) {
      this.rbuf.copyWithin(0, this.rpos, this.rend);
      this.rend -= this.rpos;
      this.rpos = 0;
    }
    while (this.rend < n) {
      const k = await this.inner.read(this.rbuf.subarray(this.rend));
      if (k === null) {
        if (this.rend === 0) return false;
        throw new ProtocolError(`grpc: stream ended inside a message`);
      }
      this.rend += k;
    }
    return true;
  }

  /** The next message's data, or null at the end of the stream. */
  private async nextMessage(): Promise<Uint8Array | null> {
    if (!(await this.fill(5))) return null;
    const len = parsePrefix(this.rbuf.subarray(this.rpos, this.rpos + 5));
    this.rpos += 5;
    let msg: Uint8Array;
    if (len <= BUF) {
      if (!(await this.fill(len))) throw new ProtocolError("grpc: stream ended inside a message");
      // A view into rbuf: it is consumed before rbuf is filled again.
      msg = this.rbuf.subarray(this.rpos, this.rpos + len);
      this.rpos += len;
    } else {
      msg = new Uint8Array(len);
      let got = Math.min(len, this.rend - this.rpos);
      msg.set(this.rbuf.subarray(this.rpos, this.rpos + got));
      this.rpos += got;
      while (got < len) {
        const k = await this.inner.read(msg.subarray(got));
        if (k === null) throw new ProtocolError("grpc: stream ended inside a message");
        got += k;
      }
    }
    return decodeChunk(msg);
  }

  async read(p: Uint8Array): Promise<number | null> {
    try {
      while (this.data.length === 0) {
        const d = await this.nextMessage();
        if (d === null) {
          if (this.failure) throw this.failure;
          return null;
        }
        this.data = d;
      }
    } catch (e) {
      if (this.side === "server" && e instanceof ProtocolError) {
        this.status = { code: 13, message: errMsg(e) }; // INTERNAL, sent in the trailers
      }
      throw e;
    }
    const n = Math.min(p.length, this.data.length);
    p.set(this.data.subarray(0, n));
    this.data = this.data.subarray(n);
    return n;
  }

  async write(p: Uint8Array): Promise<number> {
    if (this.failure) throw this.failure;
    for (let off = 0; off < p.length; off += MAX_CHUNK) {
      await this.inner.write(encodeChunk(p.subarray(off, off + MAX_CHUNK)));
    }
    return p.length;
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

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
