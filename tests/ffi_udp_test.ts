/**
 * FfiUdpSocket (ffi/udp.ts) directly: the Deno.DatagramConn-like surface (receive/send/close/
 * addr) over IPv4 and IPv6, interop with Deno's UDP sockets, and close waking a pending receive.
 */
import { assert, assertEquals, assertRejects } from "./lib/assert.ts";
import { ffiUdpAvailable, FfiUdpSocket } from "../ffi/udp.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function haveIPv6(): boolean {
  try {
    Deno.listenDatagram({ transport: "udp", hostname: "::1", port: 0 }).close();
    return true;
  } catch {
    return false;
  }
}

for (const host of ["127.0.0.1", "::1"]) {
  Deno.test({
    name: `ffi udp: send/receive with a Deno UDP peer over ${host}`,
    ignore: !ffiUdpAvailable() || (host === "::1" && !haveIPv6()),
    fn: async () => {
      const s = FfiUdpSocket.bind(host, 0);
      const peer = Deno.listenDatagram({ transport: "udp", hostname: host, port: 0 });
      try {
        assertEquals(s.addr.hostname, host);
        assert(s.addr.port > 0, "bound to an ephemeral port");
        const peerAddr = peer.addr as Deno.NetAddr;
        // FFI → Deno
        assertEquals(await s.send(enc.encode("ping"), peerAddr), 4);
        const [d, from] = await peer.receive();
        assertEquals(dec.decode(d), "ping");
        assertEquals((from as Deno.NetAddr).port, s.addr.port);
        // Deno → FFI, several datagrams drained in one go, order and bytes kept.
        for (let i = 0; i < 40; i++) await peer.send(enc.encode(`d${i}`), s.addr);
        const got: string[] = [];
        while (got.length < 40) {
          const [p, f] = await s.receive();
          assertEquals(f.port, peerAddr.port);
          assertEquals(f.hostname, host);
          got.push(dec.decode(p));
        }
        assertEquals(got, Array.from({ length: 40 }, (_, i) => `d${i}`));
        // Into a caller's buffer: truncated to its size.
        await peer.send(enc.encode("truncated"), s.addr);
        const small = new Uint8Array(5);
        const [t] = await s.receive(small);
        assertEquals(dec.decode(t), "trunc");
      } finally {
        s.close();
        peer.close();
      }
    },
  });
}

Deno.test({
  name: "ffi udp: a dual-stack socket reaches IPv4 peers; close rejects a pending receive",
  ignore: !ffiUdpAvailable() || !haveIPv6(),
  fn: async () => {
    const s = FfiUdpSocket.bind("", 0);
    const peer = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    try {
      assertEquals(s.addr.hostname, "::");
      await s.send(enc.encode("v4"), peer.addr as Deno.NetAddr);
      const [d] = await peer.receive();
      assertEquals(dec.decode(d), "v4");
      await peer.send(enc.encode("back"), {
        transport: "udp",
        hostname: "127.0.0.1",
        port: s.addr.port,
      });
      const [b, from] = await s.receive();
      assertEquals(dec.decode(b), "back");
      assertEquals(from.hostname, "127.0.0.1"); // ::ffff:127.0.0.1 reported as IPv4
      const pending = s.receive();
      s.close();
      await assertRejects(() => pending, Deno.errors.BadResource);
      await assertRejects(() => s.send(enc.encode("x"), from), Deno.errors.BadResource);
    } finally {
      s.close();
      peer.close();
    }
  },
});

Deno.test({
  name: "ffi udp: binding a taken port fails with AddrInUse",
  ignore: !ffiUdpAvailable(),
  fn: () => {
    const peer = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    try {
      let err: unknown;
      try {
        FfiUdpSocket.bind("127.0.0.1", (peer.addr as Deno.NetAddr).port).close();
      } catch (e) {
        err = e;
      }
      assert(err instanceof Deno.errors.AddrInUse, `want AddrInUse, got ${err}`);
    } finally {
      peer.close();
    }
  },
});
