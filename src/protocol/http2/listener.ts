/**
 * The `http2` listener of gost's HTTP/2 proxy: HTTP/2 over TLS (ALPN h2); every request stream
 * is one connection for the handler, carrying its request head so that the `http2` handler can
 * answer it (CONNECT → 200 and a tunnel; other methods → forwarded).
 *
 * A TLS client that does not choose h2 by ALPN gets the TLS connection itself (HTTP/1.1, as
 * Go's server falls back to); the `http2` handler serves it as the `http` handler would.
 *
 * Another handler on this listener (`socks5+http2://`) gets the stream as a plain tunnel: the
 * first read or write answers 200.
 */
import type * as http2 from "node:http2";
import { type Addr, addrString, type Conn } from "../../core/conn.ts";
import { UpgradeListener } from "../../core/upgrade_listener.ts";
import { registerListener } from "../../registry.ts";
import { listenStream } from "../../transport/tcp/listener.ts";
import { serveH2 } from "../../transport/h2/server.ts";
import { H2StreamConn } from "../../transport/h2/stream.ts";
import { alpnOf, h2TLSServer } from "../../transport/h2/tls.ts";

/** One HTTP/2 request stream, not answered yet. */
export class Http2RequestConn implements Conn {
  private readonly inner: H2StreamConn;

  constructor(
    readonly stream: http2.ServerHttp2Stream,
    readonly headers: http2.IncomingHttpHeaders,
    addrs: { localAddr: Addr; remoteAddr: Addr },
  ) {
    this.inner = new H2StreamConn(stream, addrs);
  }

  get localAddr(): Addr {
    return this.inner.localAddr;
  }
  get remoteAddr(): Addr {
    return this.inner.remoteAddr;
  }
  /** True once response headers went out. */
  get responded(): boolean {
    return this.stream.headersSent;
  }

  /** Sends the response headers (`end`: with no body). */
  respond(status: number, headers: http2.OutgoingHttpHeaders = {}, end = false): void {
    if (this.stream.headersSent || this.stream.destroyed || this.stream.closed) return;
    try {
      this.stream.respond({ ...headers, ":status": status }, { endStream: end });
    } catch {
      // reset by the client meanwhile
    }
  }

  /** Reads request body bytes without answering (the stream's data is buffered here). */
  readBody(p: Uint8Array): Promise<number | null> {
    return this.inner.read(p);
  }

  read(p: Uint8Array): Promise<number | null> {
    this.respond(200);
    return this.inner.read(p);
  }
  write(p: Uint8Array): Promise<number> {
    this.respond(200);
    return this.inner.write(p);
  }
  closeWrite(): Promise<void> {
    this.respond(200);
    return this.inner.closeWrite();
  }
  close(): void {
    this.inner.close();
  }
}

registerListener("http2", async (o) => {
  const tls = await h2TLSServer(o.params, o.log);
  return new UpgradeListener(
    listenStream(o),
    async (raw, emit) => {
      const peer = addrString(raw.remoteAddr);
      const conn = await tls(raw);
      // As gost's (Go's net/http) server: a TLS client that did not choose h2 by ALPN speaks
      // HTTP/1.1 (e.g. curl --proxy https://…); the http2 handler serves it as an HTTP proxy.
      if (alpnOf(conn) !== "h2") {
        o.log.debug(`${peer}: http2: no h2 by ALPN, serving HTTP/1.1`);
        emit(conn);
        return;
      }
      o.log.debug(`${peer}: http2 session started`);
      const addrs = { localAddr: raw.localAddr, remoteAddr: raw.remoteAddr };
      const n = await serveH2(conn, (stream, headers) => {
        emit(new Http2RequestConn(stream, headers, addrs));
      });
      o.log.debug(`${peer}: http2 session ended after ${n} stream(s)`);
    },
    o.log,
    "http2 session",
  );
});
