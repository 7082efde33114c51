/**
 * HTTP/1.x message body framing (RFC 9112 §6): deciding how a body is delimited, and streaming
 * it from one connection to another without buffering it whole. Chunked bodies are passed on
 * chunked (sizes re-written canonically, chunk extensions dropped, trailers kept), so the
 * framing the sender chose survives the proxy.
 */
import type { BufferedConn } from "../../core/bufconn.ts";
import { type Conn, writeAll } from "../../core/conn.ts";
import { ProtocolError } from "../../core/errors.ts";
import {
  concat,
  type HeaderList,
  HttpError,
  latin1Decode,
  latin1Encode,
  readLineBytes,
} from "./wire.ts";

/** How a message body is delimited. */
export type Framing =
  | { kind: "none" }
  | { kind: "length"; length: number }
  | { kind: "chunked" }
  | { kind: "close" };

/**
 * The Content-Length of a head, or undefined. Repeated or comma-joined values must agree.
 * Throws HttpError(`status`) when invalid.
 */
function contentLength(h: HeaderList, status: number): number | undefined {
  const values = h.getAll("content-length");
  if (values.length === 0) return undefined;
  let n: number | undefined;
  for (const v of values.join(",").split(",")) {
    const s = v.trim();
    if (!/^\d{1,15}$/.test(s)) throw new HttpError(status, `invalid Content-Length "${s}"`);
    if (n !== undefined && Number(s) !== n) {
      throw new HttpError(status, "conflicting Content-Length values");
    }
    n = Number(s);
  }
  return n;
}

/**
 * Framing of a request body. Throws HttpError 400 for a body that cannot be delimited, and
 * for Transfer-Encoding together with Content-Length (a request-smuggling shape).
 */
export function requestFraming(h: HeaderList): Framing {
  const te = h.tokens("transfer-encoding");
  if (te.length) {
    if (te[te.length - 1] !== "chunked") {
      throw new HttpError(400, `request Transfer-Encoding "${te.join(", ")}" is not chunked`);
    }
    if (h.has("content-length")) {
      throw new HttpError(400, "request has both Transfer-Encoding and Content-Length");
    }
    return { kind: "chunked" };
  }
  const n = contentLength(h, 400);
  return n ? { kind: "length", length: n } : { kind: "none" };
}

/** Framing of a response body, given the request method. Throws HttpError 502 when invalid. */
export function responseFraming(method: string, status: number, h: HeaderList): Framing {
  if (method === "HEAD" || (status >= 100 && status < 200) || status === 204 || status === 304) {
    return { kind: "none" };
  }
  const te = h.tokens("transfer-encoding");
  if (te.length) return te[te.length - 1] === "chunked" ? { kind: "chunked" } : { kind: "close" };
  const n = contentLength(h, 502);
  if (n === undefined) return { kind: "close" };
  return n ? { kind: "length", length: n } : { kind: "none" };
}

/** Large copy buffers, recycled between bodies. */
const pool: Uint8Array[] = [];
const BIG = 65536;

/** Collects small pieces (head, chunk lines) so that they leave in one write with data. */
class Out {
  private pending: Uint8Array[] = [];
  private size = 0;
  constructor(private readonly dst: Conn) {}
  push(b: Uint8Array): void {
    this.pending.push(b);
    this.size += b.length;
  }
  /** Writes what is pending followed by `data`, in one write. */
  async write(data: Uint8Array): Promise<void> {
    if (this.size === 0) return await writeAll(this.dst, data);
    this.pending.push(data);
    const all = concat(this.pending, this.size + data.length);
    this.pending = [];
    this.size = 0;
    await writeAll(this.dst, all);
  }
  async flush(): Promise<void> {
    if (this.size) await this.write(new Uint8Array(0));
  }
}

/** Options for copyBody. */
export interface CopyOptions {
  /** Bytes to send before the body (a head), coalesced with the first body bytes. */
  prefix?: Uint8Array;
  /** Called after every read (an idle watchdog's heartbeat). */
  touch?: () => void;
}

/**
 * Streams one body delimited by `f` from `src` to `dst` and returns the body bytes read.
 * Never reads past the body, so a pipelined next message stays in `src`. Throws a
 * ProtocolError on a truncated or malformed body.
 */
export async function copyBody(
  src: BufferedConn,
  dst: Conn,
  f: Framing,
  opts: CopyOptions = {},
): Promise<number> {
  const out = new Out(dst);
  if (opts.prefix?.length) out.push(opts.prefix);
  const buf = pool.pop() ?? new Uint8Array(BIG);
  const touch = opts.touch ?? (() => {});
  try {
    let n = 0;
    switch (f.kind) {
      case "length":
        n = await copyCounted(src, out, f.length, buf, touch);
        break;
      case "chunked":
        n = await copyChunked(src, out, buf, touch);
        break;
      case "close":
        for (;;) {
          if (src.buffered === 0) await out.flush();
          const r = await src.read(buf);
          if (r === null) break;
          touch();
          n += r;
          await out.write(buf.subarray(0, r));
        }
        break;
    }
    await out.flush();
    return n;
  } finally {
    if (pool.length < 16) pool.push(buf);
  }
}

async function copyCounted(
  src: BufferedConn,
  out: Out,
  length: number,
  buf: Uint8Array,
  touch: () => void,
): Promise<number> {
  let left = length;
  while (left > 0) {
    // Send what is pending before a read that may wait (e.g. a head before a slow body).
    if (src.buffered === 0) await out.flush();
    const r = await src.read(buf.subarray(0, Math.min(left, buf.length)));
    if (r === null) {
      throw new ProtocolError(`body truncated: ${length - left} of ${length} bytes`);
    }
    touch();
    left -= r;
    await out.write(buf.subarray(0, r));
  }
  return length;
}

const CRLF = new Uint8Array([13, 10]);
/** Longest chunk-size line accepted (size plus extensions). */
const MAX_CHUNK_LINE = 4096;
/** Cap on the trailer section. */
const MAX_TRAILERS = 16 * 1024;

/** Parses a chunk-size line (hex size, optional `;ext`). */
export function parseChunkSize(line: Uint8Array): number {
  const s = latin1Decode(line).replace(/\r?\n$/, "");
  const hex = s.split(";")[0].trim();
  if (!/^[0-9a-fA-F]{1,13}$/.test(hex)) {
    throw new ProtocolError(`invalid chunk size line "${s.slice(0, 40)}"`);
  }
  return parseInt(hex, 16);
}

async function copyChunked(
  src: BufferedConn,
  out: Out,
  buf: Uint8Array,
  touch: () => void,
): Promise<number> {
  let total = 0;
  for (;;) {
    if (src.buffered === 0) await out.flush();
    const size = parseChunkSize(await readLineBytes(src, MAX_CHUNK_LINE));
    touch();
    out.push(latin1Encode(`${size.toString(16)}\r\n`));
    if (size === 0) break;
    total += await copyCounted(src, out, size, buf, touch);
    if (src.buffered === 0) await out.flush();
    const end = await readLineBytes(src, 2);
    if (!(end.length === 2 && end[0] === 13) && !(end.length === 1)) {
      throw new ProtocolError("chunk data not followed by CRLF");
    }
    out.push(CRLF);
  }
  // Trailer fields, then the empty line that ends the body.
  let trailers = 0;
  for (;;) {
    if (src.buffered === 0) await out.flush();
    const line = await readLineBytes(src, MAX_TRAILERS - trailers);
    trailers += line.length;
    touch();
    if (line.length <= 2 && (line[0] === 10 || line[0] === 13)) {
      out.push(CRLF);
      break;
    }
    out.push(line);
  }
  return total;
}
