/**
 * `otls`: gost's obfs-tls transport. The connection starts like TLS 1.2 — a ClientHello whose
 * SessionTicket extension carries the client's first bytes, answered by a ServerHello and a
 * ChangeCipherSpec — and then carries data in TLS records (the server's first one typed
 * handshake, later ones application data) of at most 16 KiB. Nothing is encrypted: it only looks
 * like TLS to a passive observer; pair it with an encrypting protocol.
 *
 * Wire facts from gost v3 (dialer/obfs/tls, listener/obfs/tls): gost's client checks the record
 * sequence handshake(TLS 1.0) → change_cipher_spec → handshake → application data, skips exactly
 * 91 bytes of the ServerHello and refuses data records over 16384 bytes. Its client sends the
 * hello only with its first write; dost's client sends it (with no payload) when asked to read
 * first, so server-speaks-first protocols do not hang.
 *
 * Parameters: `host` (the SNI name of the ClientHello; default the node's host).
 */
import { type Addr, type Conn, splitHostPort, writeAll } from "../../core/conn.ts";
import { BufferedConn } from "../../core/bufconn.ts";
import { withDeadline } from "../../core/deadline.ts";
import { ProtocolError } from "../../core/errors.ts";
import { UpgradeListener } from "../../core/upgrade_listener.ts";
import { registerDialer, registerListener } from "../../registry.ts";
import { dialTCP } from "../../chain/direct.ts";
import { listenStream } from "../tcp/listener.ts";
import {
  clientHello,
  MAX_RECORD,
  parseClientHello,
  REC_APPDATA,
  REC_CCS,
  REC_HANDSHAKE,
  serverHello,
} from "./hello.ts";

/** How long a server waits for the ClientHello. */
const SERVER_HANDSHAKE_TIMEOUT = 15_000;
/** First-write bytes carried in the ClientHello; the rest follows in data records. */
const MAX_TICKET = 16384 - 512;
/** Data records may exceed 16 KiB a little in real TLS (expansion); refuse anything bigger. */
const MAX_INCOMING = MAX_RECORD + 2048;

/** `p` as data records (the first typed `firstType`), in one buffer for one write. */
function dataRecords(p: Uint8Array, firstType: number): Uint8Array {
  const count = Math.max(1, Math.ceil(p.length / MAX_RECORD));
  const out = new Uint8Array(p.length + 5 * count);
  let at = 0;
  for (let i = 0; i < count; i++) {
    const chunk = p.subarray(i * MAX_RECORD, Math.min(p.length, (i + 1) * MAX_RECORD));
    out[at] = i === 0 ? firstType : REC_APPDATA;
    out[at + 1] = 3;
    out[at + 2] = 3;
    out[at + 3] = chunk.length >> 8;
    out[at + 4] = chunk.length & 0xff;
    out.set(chunk, at + 5);
    at += 5 + chunk.length;
  }
  return out;
}

/** Reads record bodies as a byte stream; the first `skip` records (the hello) are dropped. */
class RecordReader {
  private remaining = 0;
  private index = 0;

  constructor(
    private readonly bc: BufferedConn,
    /** Expected record types by position; the last entry repeats. */
    private readonly expect: number[][],
    private readonly skip: number,
  ) {}

  async read(p: Uint8Array): Promise<number | null> {
    while (this.remaining === 0) {
      if ((await this.bc.peekSome()) === null) return null;
      const h = await this.bc.readFull(5);
      const len = (h[3] << 8) | h[4];
      const allowed = this.expect[Math.min(this.index, this.expect.length - 1)];
      if (!allowed.includes(h[0]) || h[1] !== 3) {
        throw new ProtocolError(
          `otls: unexpected record type ${h[0]} version ${h[1]}.${h[2]} at record ${this.index}`,
        );
      }
      if (this.index < this.skip) {
        await this.bc.readFull(len);
        this.index++;
        continue;
      }
      if (len > MAX_INCOMING) throw new ProtocolError(`otls: record of ${len} bytes is too long`);
      this.index++;
      this.remaining = len;
    }
    const n = await this.bc.read(p.subarray(0, Math.min(p.length, this.remaining)));
    if (n === null) throw new ProtocolError("otls: connection closed inside a record");
    this.remaining -= n;
    return n;
  }
}

/** Client side: the ClientHello carries the first write. */
class ObfsTlsClientConn implements Conn {
  private readonly reader: RecordReader;
  private helloSent?: Promise<void>;

  constructor(private readonly inner: Conn, private readonly host: string) {
    // The server's hello, its change_cipher_spec, then its first data record (typed handshake)
    // and application data.
    this.reader = new RecordReader(
      new BufferedConn(inner),
      [[REC_HANDSHAKE], [REC_CCS], [REC_HANDSHAKE, REC_APPDATA], [REC_APPDATA, REC_HANDSHAKE]],
      2,
    );
  }

  get localAddr(): Addr {
    return this.inner.localAddr;
  }
  get remoteAddr(): Addr {
    return this.inner.remoteAddr;
  }

  private sendHello(p: Uint8Array): Promise<void> {
    const first = p.subarray(0, MAX_TICKET);
    let out = clientHello(this.host, first);
    if (p.length > first.length) {
      const rest = dataRecords(p.subarray(first.length), REC_APPDATA);
      const both = new Uint8Array(out.length + rest.length);
      both.set(out);
      both.set(rest, out.length);
      out = both;
    }
    return this.helloSent = writeAll(this.inner, out);
  }

  async write(p: Uint8Array): Promise<number> {
    if (!this.helloSent) await this.sendHello(p);
    else {
      await this.helloSent;
      await writeAll(this.inner, dataRecords(p, REC_APPDATA));
    }
    return p.length;
  }

  read(p: Uint8Array): Promise<number | null> {
    // Asked to read before writing (server speaks first): open with an empty hello.
    if (!this.helloSent) void this.sendHello(new Uint8Array(0)).catch(() => {});
    return this.reader.read(p);
  }

  closeWrite(): Promise<void> {
    return this.inner.closeWrite();
  }
  close(): void {
    this.inner.close();
  }
}

/** Server side, past the hello: the client's ticket bytes first, then its records. */
class ObfsTlsServerConn implements Conn {
  private pending: Uint8Array;
  private wrote = false;
  private readonly reader: RecordReader;

  constructor(private readonly inner: Conn, bc: BufferedConn, first: Uint8Array) {
    this.pending = first;
    this.reader = new RecordReader(bc, [[REC_APPDATA, REC_HANDSHAKE]], 0);
  }

  get localAddr(): Addr {
    return this.inner.localAddr;
  }
  get remoteAddr(): Addr {
    return this.inner.remoteAddr;
  }

  read(p: Uint8Array): Promise<number | null> {
    if (this.pending.length) {
      const n = Math.min(p.length, this.pending.length);
      p.set(this.pending.subarray(0, n));
      this.pending = this.pending.subarray(n);
      return Promise.resolve(n);
    }
    return this.reader.read(p);
  }

  async write(p: Uint8Array): Promise<number> {
    // gost's client expects the server's first data record typed handshake.
    const type = this.wrote ? REC_APPDATA : REC_HANDSHAKE;
    this.wrote = true;
    await writeAll(this.inner, dataRecords(p, type));
    return p.length;
  }

  closeWrite(): Promise<void> {
    return this.inner.closeWrite();
  }
  close(): void {
    this.inner.close();
  }
}

/** Reads the ClientHello, answers ServerHello + ChangeCipherSpec. */
async function serverHandshake(raw: Conn): Promise<Conn> {
  const bc = new BufferedConn(raw);
  const hello = await withDeadline(raw, SERVER_HANDSHAKE_TIMEOUT, "otls ClientHello", async () => {
    const h = await bc.readFull(5);
    if (h[0] !== REC_HANDSHAKE || h[1] !== 3) {
      throw new ProtocolError(`otls: not a TLS handshake record (bytes ${h[0]} ${h[1]})`);
    }
    return parseClientHello(await bc.readFull((h[3] << 8) | h[4]));
  });
  await writeAll(raw, serverHello(hello.sessionId));
  return new ObfsTlsServerConn(raw, bc, hello.payload);
}

registerDialer("otls", (o) => {
  const host = o.params.str("host");
  return {
    dial: (addr, d) => dialTCP(addr, d.timeout),
    handshake: (conn, h) =>
      Promise.resolve(new ObfsTlsClientConn(conn, host ?? splitHostPort(h.addr).host)),
  };
});

registerListener("otls", (o) =>
  Promise.resolve(
    new UpgradeListener(
      listenStream(o),
      async (raw, emit) => emit(await serverHandshake(raw)),
      o.log,
      "otls handshake",
    ),
  ));
