/**
 * The server side of an HTTP/2 connection with node:http2: one session per accepted (and
 * layered) connection, every request stream handed to a callback. Used by the h2/h2c and grpc
 * listeners and by the http2 proxy listener.
 */
import * as http2 from "node:http2";
import { type Conn } from "../../core/conn.ts";
import { connToDuplex } from "../../core/duplex.ts";
import { errMsg, ProtocolError } from "../../core/errors.ts";
import { H2_SETTINGS, tuneSession } from "./stream.ts";

/** How long a new connection may take to send the HTTP/2 preface and SETTINGS. */
export const PREFACE_TIMEOUT = 15_000;

/** How long a session whose peer sent end of stream may still finish its replies. */
export const END_GRACE = 1_000;

/** A request stream and its headers. */
export type OnStream = (
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
) => void;

/**
 * Serves HTTP/2 on `conn` until the session ends; resolves to the number of streams served.
 * Rejects with a ProtocolError when the peer never spoke HTTP/2 (garbage, a truncated or
 * missing preface): the caller logs it; other sessions are not affected.
 */
export function serveH2(conn: Conn, onStream: OnStream, prefaceTimeout = PREFACE_TIMEOUT) {
  return new Promise<number>((resolve, reject) => {
    const server = http2.createServer({ settings: H2_SETTINGS });
    let streams = 0;
    let err: Error | undefined;
    let settled = false;
    const duplex = connToDuplex(conn);
    server.on("session", (s: http2.ServerHttp2Session) => {
      let spoke = false;
      const timer = setTimeout(() => {
        err ??= new ProtocolError(`no HTTP/2 preface within ${prefaceTimeout} ms`);
        s.destroy();
      }, prefaceTimeout);
      s.once("remoteSettings", () => {
        spoke = true;
        clearTimeout(timer);
        tuneSession(s);
      });
      s.on("error", (e: Error) => err ??= e);
      // The session does not always notice the peer's end of stream (a truncated preface then
      // FIN left it open in Deno 2.9.6): end it here, after a moment for replies in flight.
      duplex.once("end", () => {
        if (!spoke) err ??= new ProtocolError("connection closed before a valid HTTP/2 preface");
        setTimeout(() => s.destroy(), spoke ? END_GRACE : 0);
      });
      s.on("close", () => {
        clearTimeout(timer);
        duplex.destroy();
        if (settled) return;
        settled = true;
        if (!spoke) {
          const why = err ? `: ${errMsg(err)}` : "";
          reject(
            err instanceof ProtocolError
              ? err
              : new ProtocolError(`not an HTTP/2 client (no valid connection preface)${why}`),
          );
        } else resolve(streams);
      });
    });
    server.on("sessionError", (e: Error) => err ??= e);
    server.on("stream", (stream: http2.ServerHttp2Stream, headers) => {
      streams++;
      stream.on("error", () => {}); // reported through the stream's Conn, never fatal
      onStream(stream, headers);
    });
    server.emit("connection", duplex);
  });
}
