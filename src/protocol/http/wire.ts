/**
 * HTTP/1.x message heads: reading a head off a BufferedConn (bounded, with an early check that
 * rejects non-HTTP bytes at once), parsing request and response heads, a small ordered header
 * list, and serializing heads back to bytes.
 *
 * Heads are decoded as Latin-1 (one char per byte) so that header bytes outside ASCII pass
 * through a proxy unchanged.
 */
import type { BufferedConn } from "../../core/bufconn.ts";
import { ProtocolError } from "../../core/errors.ts";

/** Default cap on a request head (request line + headers), as many servers use. */
export const MAX_REQUEST_HEAD = 64 * 1024;
/** Cap on a response head from an upstream (large Set-Cookie sets happen). */
export const MAX_RESPONSE_HEAD = 256 * 1024;
/** Cap on the number of header fields in one head. */
export const MAX_HEADERS = 256;

const CR = 13;
const LF = 10;
const SP = 32;

/**
 * A malformed or oversized message from the client, with the status to answer it with
 * (400 Bad Request, 431 Request Header Fields Too Large, …).
 */
export class HttpError extends ProtocolError {
  override name = "HttpError";
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** Bytes → string, one char per byte (lossless). */
export function latin1Decode(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 8192) {
    s += String.fromCharCode(...b.subarray(i, i + 8192));
  }
  return s;
}

/** String → bytes, one byte per char (chars above U+00FF are replaced by "?"). */
export function latin1Encode(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out[i] = c > 255 ? 63 : c;
  }
  return out;
}

/** RFC 9110 token characters (header names, methods). */
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  TCHAR[c.charCodeAt(0)] = 1;
}

/** True when `s` is a non-empty RFC 9110 token. */
export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || !TCHAR[c]) return false;
  }
  return true;
}

/** An ordered, case-insensitive header list that keeps the original names and order. */
export class HeaderList {
  constructor(readonly entries: [name: string, value: string][] = []) {}

  /** The first value of `name`, or undefined. */
  get(name: string): string | undefined {
    const n = name.toLowerCase();
    for (const [k, v] of this.entries) if (k.toLowerCase() === n) return v;
    return undefined;
  }

  /** Every value of `name`, in order. */
  getAll(name: string): string[] {
    const n = name.toLowerCase();
    return this.entries.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v);
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  /** Removes every field named `name`; true when one was present. */
  delete(name: string): boolean {
    const n = name.toLowerCase();
    const before = this.entries.length;
    for (let i = this.entries.length - 1; i >= 0; i--) {
      if (this.entries[i][0].toLowerCase() === n) this.entries.splice(i, 1);
    }
    return this.entries.length !== before;
  }

  add(name: string, value: string): void {
    this.entries.push([name, value]);
  }

  /** Replaces every field named `name` with one field. */
  set(name: string, value: string): void {
    this.delete(name);
    this.add(name, value);
  }

  /** The comma-separated tokens of every `name` field, trimmed and lower-cased. */
  tokens(name: string): string[] {
    const out: string[] = [];
    for (const v of this.getAll(name)) {
      for (const t of v.split(",")) {
        const s = t.trim().toLowerCase();
        if (s) out.push(s);
      }
    }
    return out;
  }

  clone(): HeaderList {
    return new HeaderList(this.entries.map(([k, v]) => [k, v]));
  }
}

/** A parsed request head. */
export interface RequestHead {
  method: string;
  /** The request-target exactly as sent (absolute-form, origin-form or authority-form). */
  target: string;
  /** `HTTP/1.0` or `HTTP/1.1`. */
  version: string;
  headers: HeaderList;
}

/** A parsed response head. */
export interface ResponseHead {
  version: string;
  status: number;
  reason: string;
  headers: HeaderList;
}

/**
 * Checks the start of a message as it arrives, so that non-HTTP bytes (a TLS ClientHello,
 * binary junk) are refused at once instead of after a timeout or the size cap.
 * `pos` is the byte's offset in the start line; returns false to reject.
 */
type StartCheck = (b: number, pos: number) => boolean;

/** A request line starts with a method token (≤ 32 chars) followed by a space. */
const requestStart = (): StartCheck => {
  let methodDone = false;
  return (b, pos) => {
    if (methodDone) return true;
    if (b === SP && pos > 0) {
      methodDone = true;
      return true;
    }
    return pos < 32 && b < 128 && TCHAR[b] === 1;
  };
};

const HTTP_SLASH = [72, 84, 84, 80, 47]; // "HTTP/"
const responseStart = (): StartCheck => (b, pos) => pos >= 5 || b === HTTP_SLASH[pos];

/**
 * Reads one message head (start line through the blank line) and returns its raw bytes,
 * blank line included. Empty lines before the start line are skipped (RFC 9112 §2.2).
 * Returns null when the stream ends before any byte of a start line.
 *
 * Throws HttpError 431 past `max` bytes, 400 for bytes that cannot start an HTTP message of
 * this `kind` and for a stream that ends inside the head.
 */
export async function readHeadBytes(
  bc: BufferedConn,
  kind: "request" | "response",
  max: number,
): Promise<Uint8Array | null> {
  const check = kind === "request" ? requestStart() : responseStart();
  const parts: Uint8Array[] = [];
  let total = 0; // bytes consumed, skipped empty lines included (for the cap)
  let kept = 0; // bytes of the head itself
  let started = false;
  let lineLen = 0; // bytes of the current line so far, CR included
  let lastCR = false;
  let firstLine = true;
  for (;;) {
    const view = await bc.peekSome();
    if (view === null) {
      if (!started) return null;
      throw new HttpError(400, `${kind} head truncated after ${total} bytes`);
    }
    let i = 0;
    if (!started) {
      while (i < view.length && (view[i] === CR || view[i] === LF)) i++;
      if (i > 0) {
        // Leading empty lines: drop them (bounded by the same cap).
        total += i;
        if (total > max) throw new HttpError(431, `${kind} head exceeds ${max} bytes`);
        await bc.readFull(i);
        continue;
      }
      started = true;
    }
    let end = -1;
    for (; i < view.length; i++) {
      const b = view[i];
      if (b === LF) {
        if (lineLen === 0 || (lineLen === 1 && lastCR)) {
          end = i + 1;
          break;
        }
        firstLine = false;
        lineLen = 0;
        lastCR = false;
        continue;
      }
      if (firstLine && b !== CR && !check(b, lineLen)) {
        throw new HttpError(400, `not an HTTP ${kind} (byte 0x${b.toString(16)} in start line)`);
      }
      lineLen++;
      lastCR = b === CR;
    }
    const n = end >= 0 ? end : view.length;
    if (total + n > max) throw new HttpError(431, `${kind} head exceeds ${max} bytes`);
    total += n;
    kept += n;
    parts.push(await bc.readFull(n));
    if (end >= 0) return concat(parts, kept);
  }
}

/**
 * Reads one line (through LF) and returns its raw bytes, terminator included. Throws a
 * ProtocolError past `max` bytes or at end of stream.
 */
export async function readLineBytes(bc: BufferedConn, max: number): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const view = await bc.peekSome();
    if (view === null) throw new ProtocolError("unexpected end of stream inside a line");
    const i = view.indexOf(LF);
    const n = i >= 0 ? i + 1 : view.length;
    if (total + n > max) throw new ProtocolError(`line longer than ${max} bytes`);
    total += n;
    parts.push(await bc.readFull(n));
    if (i >= 0) return concat(parts, total);
  }
}

/** Concatenates byte arrays (`total` = their summed length, when known). */
export function concat(parts: Uint8Array[], total?: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(total ?? parts.reduce((s, p) => s + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Splits raw head bytes into lines without terminators (the final empty line dropped). */
function headLines(raw: Uint8Array): string[] {
  const lines = latin1Decode(raw).split("\n").map((l) => l.endsWith("\r") ? l.slice(0, -1) : l);
  while (lines.length && lines[lines.length - 1] === "") lines.pop();
  return lines;
}

/** Parses header lines (after the start line); `status` is the HttpError status to use. */
function parseFields(lines: string[], status: number): HeaderList {
  const h = new HeaderList();
  for (const line of lines) {
    if (line.startsWith(" ") || line.startsWith("\t")) {
      // obs-fold (RFC 9112 §5.2): replaced by a space.
      const last = h.entries[h.entries.length - 1];
      if (!last) throw new HttpError(status, "header continuation line without a header");
      last[1] = `${last[1]} ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(":");
    if (colon <= 0) throw new HttpError(status, `malformed header line "${clip(line)}"`);
    const name = line.slice(0, colon);
    if (!isToken(name)) throw new HttpError(status, `invalid header name "${clip(name)}"`);
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "");
    if (/[\0\r]/.test(value)) throw new HttpError(status, `invalid byte in header "${name}"`);
    if (h.entries.length >= MAX_HEADERS) {
      throw new HttpError(status === 400 ? 431 : status, `more than ${MAX_HEADERS} header fields`);
    }
    h.add(name, value);
  }
  return h;
}

/** Shortens untrusted text for log and error messages. */
export function clip(s: string, n = 60): string {
  const t = s.replace(/[^\x20-\x7e]/g, "?");
  return t.length > n ? `${t.slice(0, n)}…` : t;
}

/** Parses a raw request head (from readHeadBytes). Throws HttpError 400 when malformed. */
export function parseRequestHead(raw: Uint8Array): RequestHead {
  const lines = headLines(raw);
  const start = lines[0] ?? "";
  const m = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e\x80-\xff]+) (HTTP\/\d\.\d)$/.exec(start);
  if (!m) throw new HttpError(400, `malformed request line "${clip(start)}"`);
  const [, method, target, version] = m;
  if (version !== "HTTP/1.1" && version !== "HTTP/1.0") {
    throw new HttpError(400, `unsupported protocol version ${version}`);
  }
  return { method, target, version, headers: parseFields(lines.slice(1), 400) };
}

/** Parses a raw response head. Throws HttpError 502 when malformed. */
export function parseResponseHead(raw: Uint8Array): ResponseHead {
  const lines = headLines(raw);
  const start = lines[0] ?? "";
  const m = /^(HTTP\/1\.[01]) (\d{3})(?: (.*))?$/.exec(start);
  if (!m) throw new HttpError(502, `malformed status line "${clip(start)}"`);
  return {
    version: m[1],
    status: Number(m[2]),
    reason: m[3] ?? "",
    headers: parseFields(lines.slice(1), 502),
  };
}

function fieldsText(h: HeaderList): string {
  let s = "";
  for (const [k, v] of h.entries) s += `${k}: ${v}\r\n`;
  return s;
}

/** Serializes a request head. */
export function serializeRequestHead(r: RequestHead): Uint8Array {
  return latin1Encode(`${r.method} ${r.target} ${r.version}\r\n${fieldsText(r.headers)}\r\n`);
}

/** Serializes a response head. */
export function serializeResponseHead(r: ResponseHead): Uint8Array {
  const reason = r.reason ? ` ${r.reason}` : "";
  return latin1Encode(`${r.version} ${r.status}${reason}\r\n${fieldsText(r.headers)}\r\n`);
}

/** Reason phrases for the statuses dost itself sends. */
const REASONS: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  407: "Proxy Authentication Required",
  408: "Request Timeout",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

/** The standard reason phrase of `status` ("" when unknown). */
export function reasonPhrase(status: number): string {
  return REASONS[status] ?? "";
}

/** A complete bodyless response: status line, the given headers and `Content-Length: 0`. */
export function simpleResponse(status: number, headers: [string, string][] = []): Uint8Array {
  const h = new HeaderList([...headers, ["Content-Length", "0"]]);
  return serializeResponseHead({
    version: "HTTP/1.1",
    status,
    reason: reasonPhrase(status),
    headers: h,
  });
}
