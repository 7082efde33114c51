/**
 * Waiting for a node:tls handshake to finish. A TLSSocket over a Duplex reports some failures
 * only as the transport ending (a truncated ClientHello gives neither 'error' nor 'close' in
 * Deno 2.9.6), so the transport's end and a deadline settle the wait too.
 */
import type { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";
import { ProtocolError } from "../../core/errors.ts";

/** Resolves on `event` ("secure" / "secureConnect"); rejects (and destroys both) otherwise. */
export function settleHandshake(
  sock: TLSSocket,
  transport: Duplex,
  event: "secure" | "secureConnect",
  timeoutMs: number,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = () => {
      clearTimeout(timer);
      sock.off(event, ok);
      sock.off("error", fail);
      sock.off("close", ended);
      transport.off("end", ended);
      transport.off("close", ended);
    };
    const ok = () => {
      done();
      resolve();
    };
    const fail = (e: Error) => {
      done();
      sock.destroy();
      transport.destroy();
      reject(e);
    };
    const ended = () => fail(new ProtocolError("connection closed during the tls handshake"));
    if (timeoutMs > 0) {
      timer = setTimeout(
        () => fail(new ProtocolError(`tls handshake timed out after ${timeoutMs} ms`)),
        timeoutMs,
      );
    }
    sock.once(event, ok);
    sock.once("error", fail);
    sock.once("close", ended);
    transport.once("end", ended);
    transport.once("close", ended);
  });
}
