/**
 * `ohttp`: gost's obfs-http transport. The client opens with an HTTP/1.1 `GET /` WebSocket-style
 * Upgrade request carrying its first bytes right after the head; the server answers
 * `101 Switching Protocols` and from then on both sides exchange raw bytes (no framing). It only
 * disguises the start of a connection; pair it with an encrypting protocol.
 *
 * Wire facts (gost v3 dialer/obfs/http, listener/obfs/http): the server accepts any GET whose
 * `Upgrade` is `websocket` (else 400 and close); bytes after the request head (or its
 * Content-Length body) are the client's first data. gost's client sends its head only with its
 * first write, so a server-speaks-first protocol would hang; dost's client sends the head alone
 * when it is asked to read before it has written.
 *
 * Parameters: `host` (Host header; default the node address), `header` (`Name:Value,…`, extra
 * request or response headers).
 */
import { type Conn, writeAll } from "../../core/conn.ts";
import { BufferedConn } from "../../core/bufconn.ts";
import { withDeadline } from "../../core/deadline.ts";
import { ConfigError, ProtocolError } from "../../core/errors.ts";
import { UpgradeListener } from "../../core/upgrade_listener.ts";
import type { Params } from "../../config/params.ts";
import { registerDialer, registerListener } from "../../registry.ts";
import { dialTCP } from "../../chain/direct.ts";
import { listenStream } from "../tcp/listener.ts";

const enc = new TextEncoder();
/** How long a server waits for a client's request head. */
const SERVER_HANDSHAKE_TIMEOUT = 15_000;
/** Limits of a request or response head. */
const MAX_LINE = 8192;
const MAX_FIELDS = 100;
const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** `header=Name:Value,Name2:Value2` → pairs; rejects names and values that would break the head. */
export function obfsHeaders(p: Params): [string, string][] {
  const raw = p.str("header");
  if (!raw) return [];
  return raw.split(",").filter((s) => s.trim() !== "").map((item) => {
    const c = item.indexOf(":");
    const k = c > 0 ? item.slice(0, c).trim() : "";
    const v = c > 0 ? item.slice(c + 1).trim() : "";
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k) || /[\r\n]/.test(v)) {
      throw new ConfigError(
        `${p.where}: parameter "header": bad entry "${item}" (want Name:Value)`,
      );
    }
    return [k, v];
  });
}

/** Reads an HTTP head: the first line and the fields (names lower-cased). */
async function readHead(bc: BufferedConn): Promise<{ first: string; fields: Map<string, string> }> {
  const first = await bc.readLine(MAX_LINE);
  if (first === null) throw new ProtocolError("ohttp: connection closed before the HTTP head");
  const fields = new Map<string, string>();
  for (let i = 0;; i++) {
    const line = await bc.readLine(MAX_LINE);
    if (line === null) throw new ProtocolError("ohttp: connection closed inside the HTTP head");
    if (line === "") return { first, fields };
    if (i >= MAX_FIELDS) throw new ProtocolError(`ohttp: more than ${MAX_FIELDS} header fields`);
    const c = line.indexOf(":");
    if (c <= 0) throw new ProtocolError(`ohttp: malformed header line "${line.slice(0, 60)}"`);
    fields.set(line.slice(0, c).trim().toLowerCase(), line.slice(c + 1).trim());
  }
}

async function acceptKey(key: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-1", enc.encode(key + WS_GUID));
  return btoa(String.fromCharCode(...new Uint8Array(d)));
}

function randomKey(): string {
  return btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
}

/** Client side: the request head goes out with the first write (or alone, before a first read). */
class ObfsHttpClientConn extends BufferedConn {
  private head?: Uint8Array;
  private headSent?: Promise<void>;
  private answered?: Promise<void>;

  constructor(conn: Conn, host: string, header: [string, string][]) {
    super(conn);
    const lines = [
      "GET / HTTP/1.1",
      `Host: ${host}`,
      "User-Agent: Go-http-client/1.1",
      "Connection: Upgrade",
      "Upgrade: websocket",
      `Sec-WebSocket-Key: ${randomKey()}`,
      ...header.map(([k, v]) => `${k}: ${v}`),
    ];
    this.head = enc.encode(lines.join("\r\n") + "\r\n\r\n");
  }

  private sendHead(data?: Uint8Array): Promise<void> {
    const head = this.head!;
    this.head = undefined;
    let out = head;
    if (data?.length) {
      out = new Uint8Array(head.length + data.length);
      out.set(head);
      out.set(data, head.length);
    }
    return this.headSent = writeAll(this.inner, out);
  }

  override async write(p: Uint8Array): Promise<number> {
    if (this.head) {
      await this.sendHead(p);
      return p.length;
    }
    await this.headSent;
    return this.inner.write(p);
  }

  override async read(p: Uint8Array): Promise<number | null> {
    if (!this.answered) {
      if (this.head) void this.sendHead().catch(() => {}); // server-speaks-first: do not wait
      this.answered = this.readAnswer();
    }
    await this.answered;
    return super.read(p);
  }

  /** Drains the server's response head (101 expected). */
  private async readAnswer(): Promise<void> {
    const { first } = await readHead(this);
    if (!/^HTTP\/1\.[01] 101\b/.test(first)) {
      throw new ProtocolError(`ohttp: server answered "${first.slice(0, 80)}" (want 101)`);
    }
  }
}

/** Server side: reads and checks the request, answers 101; what follows the head is data. */
async function serverHandshake(raw: Conn, header: [string, string][]): Promise<Conn> {
  const bc = new BufferedConn(raw);
  const { first, fields } = await withDeadline(
    raw,
    SERVER_HANDSHAKE_TIMEOUT,
    "ohttp request",
    () => readHead(bc),
  );
  const method = first.split(" ")[0];
  const extra = header.map(([k, v]) => `${k}: ${v}\r\n`).join("");
  const date = `Date: ${new Date().toUTCString()}\r\n`;
  if (method !== "GET" || fields.get("upgrade")?.toLowerCase() !== "websocket") {
    await writeAll(
      raw,
      enc.encode(`HTTP/1.1 400 Bad Request\r\n${extra}${date}Content-Length: 0\r\n\r\n`),
    )
      .catch(() => {});
    throw new ProtocolError(`ohttp: not an upgrade request: "${first.slice(0, 80)}"`);
  }
  const accept = await acceptKey(fields.get("sec-websocket-key") ?? "");
  await writeAll(
    raw,
    enc.encode(
      `HTTP/1.1 101 Switching Protocols\r\n${extra}Connection: Upgrade\r\n${date}` +
        `Sec-Websocket-Accept: ${accept}\r\nUpgrade: websocket\r\n\r\n`,
    ),
  );
  return bc;
}

registerDialer("ohttp", (o) => {
  const host = o.params.str("host");
  const header = obfsHeaders(o.params);
  return {
    dial: (addr, d) => dialTCP(addr, d.timeout),
    handshake: (conn, h) => Promise.resolve(new ObfsHttpClientConn(conn, host ?? h.addr, header)),
  };
});

registerListener("ohttp", (o) => {
  const header = obfsHeaders(o.params);
  return Promise.resolve(
    new UpgradeListener(
      listenStream(o),
      async (raw, emit) => emit(await serverHandshake(raw, header)),
      o.log,
      "ohttp handshake",
    ),
  );
});
