/**
 * The `udp` dialer: a node reached over plain UDP (`ssu://…` nodes use it by default, as in
 * gost). It yields a message-preserving Conn to the node — one write = one datagram — which only
 * a datagram connector (ssu) can use; it cannot carry the stream of a later hop.
 */
import { dialUDPDirect } from "./socket.ts";
import { registerDialer } from "../../registry.ts";

/** Marks conns made by the udp dialer (connectors check it before speaking datagrams). */
export const DATAGRAM_CONN = Symbol("datagram conn");

registerDialer("udp", () => ({
  dial: async (addr) => {
    const c = await dialUDPDirect(addr);
    (c as unknown as Record<symbol, boolean>)[DATAGRAM_CONN] = true;
    return c;
  },
}));

/** True for a conn from the udp dialer. */
export function isDatagramConn(c: unknown): boolean {
  return !!(c && (c as Record<symbol, boolean>)[DATAGRAM_CONN]);
}
