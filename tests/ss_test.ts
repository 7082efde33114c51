/**
 * Shadowsocks (`ss`): real shadowsocks-libev both ways for every AEAD cipher, dost ↔ dost for the
 * 2022 ciphers and `none`, a server-speaks-first target, and the silent treatment of bad and
 * replayed clients.
 */
import { assert, assertEquals } from "./lib/assert.ts";
import {
  curl,
  freePort,
  IT,
  needs,
  sha256,
  startDost,
  startEcho,
  startOrigin,
  talk,
} from "./lib/harness.ts";
import { startPeer } from "./lib/peers.ts";
import { encodeAddr } from "../src/protocol/socks/addr.ts";
import { ssCipher } from "../src/protocol/ss/cipher.ts";
import { SsStreamConn } from "../src/protocol/ss/stream.ts";
import type { Conn } from "../src/core/conn.ts";

const AEAD = ["aes-128-gcm", "aes-256-gcm", "chacha20-ietf-poly1305"];
const PW = "s3cr%t pass";
const enc = encodeURIComponent;

for (const m of AEAD) {
  Deno.test({
    name: `ss ${m}: ss-local (shadowsocks-libev) → dost ss server → origin`,
    ...IT,
    ...needs("ss-local"),
    fn: async () => {
      const origin = startOrigin();
      const [s, l] = [freePort(), freePort()];
      const dost = await startDost(["-L", `ss://${m}:${enc(PW)}@127.0.0.1:${s}`]);
      const local = await startPeer("ss-local", [
        "-s",
        "127.0.0.1",
        "-p",
        String(s),
        "-b",
        "127.0.0.1",
        "-l",
        String(l),
        "-k",
        PW,
        "-m",
        m,
      ], l);
      try {
        const r = await curl([
          "--socks5-hostname",
          `127.0.0.1:${l}`,
          `http://localhost:${origin.port}/ss`,
        ]);
        assertEquals(r.stdout, "hello /ss", r.stderr);
        const big = await curl([
          "--socks5-hostname",
          `127.0.0.1:${l}`,
          `http://127.0.0.1:${origin.port}/big?n=5000000`,
        ]);
        assertEquals(big.stdout.length, 5_000_000, big.stderr);
      } finally {
        await local.stop();
        await dost.stop();
        await origin.close();
      }
    },
  });

  Deno.test({
    name: `ss ${m}: dost -F ss:// → ss-server (shadowsocks-libev) → origin`,
    ...IT,
    ...needs("ss-server"),
    fn: async () => {
      const origin = startOrigin();
      const [s, a] = [freePort(), freePort()];
      const server = await startPeer("ss-server", [
        "-s",
        "127.0.0.1",
        "-p",
        String(s),
        "-k",
        PW,
        "-m",
        m,
      ], s);
      const dost = await startDost([
        "-L",
        `socks5://127.0.0.1:${a}`,
        "-F",
        `ss://${m}:${enc(PW)}@127.0.0.1:${s}`,
      ]);
      try {
        const r = await curl([
          "--socks5-hostname",
          `127.0.0.1:${a}`,
          `http://localhost:${origin.port}/ss`,
        ]);
        assertEquals(r.stdout, "hello /ss", r.stderr);
        const big = await curl([
          "--socks5-hostname",
          `127.0.0.1:${a}`,
          `http://127.0.0.1:${origin.port}/big?n=5000000`,
        ]);
        assertEquals(big.stdout.length, 5_000_000, big.stderr);
      } finally {
        await dost.stop();
        await server.stop();
        await origin.close();
      }
    },
  });
}

const PSK16 = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
const PSK32 = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));

for (
  const [m, pw] of [
    ["aes-128-gcm", PW],
    ["2022-blake3-aes-128-gcm", PSK16],
    ["2022-blake3-aes-256-gcm", PSK32],
    ["2022-blake3-chacha20-poly1305", PSK32],
    ["none", "x"],
  ]
) {
  Deno.test({
    name: `ss ${m}: dost ↔ dost, 20 MB byte-exact, and a server that speaks first`,
    ...IT,
    fn: async () => {
      const echo = startEcho();
      const banner = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      (async () => {
        for await (const c of banner) {
          c.write(new TextEncoder().encode("220 ready\r\n")).then(async () => {
            const b = new Uint8Array(100);
            const n = await c.read(b);
            if (n) await c.write(b.subarray(0, n));
            c.close();
          }).catch(() => {});
        }
      })().catch(() => {});
      const [s, a, c] = [freePort(), freePort(), freePort()];
      const procs = [];
      try {
        procs.push(await startDost(["-L", `ss://${m}:${enc(pw)}@127.0.0.1:${s}`]));
        procs.push(
          await startDost([
            "-L",
            `tcp://127.0.0.1:${a}/127.0.0.1:${echo.port}`,
            "-L",
            `tcp://127.0.0.1:${c}/127.0.0.1:${(banner.addr as Deno.NetAddr).port}`,
            "-F",
            `ss://${m}:${enc(pw)}@127.0.0.1:${s}`,
          ]),
        );
        const big = new Uint8Array(20 << 20);
        for (let i = 0; i < big.length; i += 65536) {
          crypto.getRandomValues(big.subarray(i, i + 65536));
        }
        const out = await talk(a, big, { closeWrite: true, safetyMs: 60_000 });
        assertEquals(out.bytes.length, big.length);
        assertEquals(await sha256(out.bytes), await sha256(big));
        // SMTP-like: the server talks first; the client only answers after the greeting.
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: c });
        const buf = new Uint8Array(100);
        let got = "";
        while (!got.includes("\r\n")) {
          const n = await conn.read(buf);
          if (n === null) break;
          got += new TextDecoder().decode(buf.subarray(0, n));
        }
        assertEquals(got, "220 ready\r\n");
        conn.close();
      } finally {
        for (const p of procs) await p.stop();
        echo.close();
        banner.close();
      }
    },
  });
}

/** A Conn that records what is written to it and reads nothing. */
class Recorder implements Conn {
  chunks: Uint8Array[] = [];
  localAddr = { transport: "tcp", hostname: "127.0.0.1", port: 1 };
  remoteAddr = this.localAddr;
  read(): Promise<number | null> {
    return Promise.resolve(null);
  }
  write(p: Uint8Array): Promise<number> {
    this.chunks.push(p.slice());
    return Promise.resolve(p.length);
  }
  closeWrite(): Promise<void> {
    return Promise.resolve();
  }
  close(): void {}
  bytes(): Uint8Array {
    const out = new Uint8Array(this.chunks.reduce((s, c) => s + c.length, 0));
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

Deno.test({
  name: "ss: garbage gets no answer; a replayed recording is ignored; good clients still served",
  ...IT,
  fn: async () => {
    const echo = startEcho();
    const s = freePort();
    const dost = await startDost([
      "-L",
      `ss://aes-256-gcm:${enc(PW)}@127.0.0.1:${s}?readTimeout=2s`,
      "-D",
    ]);
    try {
      // A real client session, recorded: salt, then the target address and "hello" sealed.
      const rec = new Recorder();
      const client = new SsStreamConn(rec, ssCipher("aes-256-gcm", PW, "test"));
      const addr = encodeAddr("127.0.0.1", echo.port);
      const first = new Uint8Array(addr.length + 5);
      first.set(addr);
      first.set(new TextEncoder().encode("hello"), addr.length);
      await client.write(first);
      const session = rec.bytes();
      const live = await talk(s, session, { safetyMs: 3000 });
      assert(
        live.bytes.length > 32 + 18 + 5,
        `the first use is served (${live.bytes.length} bytes)`,
      );
      const replay = await talk(s, session, { safetyMs: 3000 });
      assertEquals(replay.bytes.length, 0, "a replayed salt gets nothing back");
      // Garbage and a truncated salt: silence, then the server closes after the client does.
      for (const g of [new Uint8Array(500).fill(7), new Uint8Array(10)]) {
        const r = await talk(s, g, { closeWrite: true, safetyMs: 5000 });
        assertEquals(r.bytes.length, 0);
        assert(r.closedByPeer);
      }
      assert(dost.logs().includes("replayed salt"), dost.logs());
      // A good client afterwards.
      const rec2 = new Recorder();
      await new SsStreamConn(rec2, ssCipher("aes-256-gcm", PW, "test")).write(first);
      const again = await talk(s, rec2.bytes(), { safetyMs: 3000 });
      assert(again.bytes.length > 0);
    } finally {
      await dost.stop();
      echo.close();
    }
  },
});

Deno.test({
  name: "ss: bad methods and keys fail at start-up with one line",
  ...IT,
  fn: async () => {
    const { runDost } = await import("./lib/harness.ts");
    const cases: [string, RegExp][] = [
      [`ss://rc4-md5:x@127.0.0.1:${freePort()}`, /stream cipher "rc4-md5" is not supported/],
      [`ss://aes-999:x@127.0.0.1:${freePort()}`, /unknown shadowsocks method "aes-999"/],
      [`ss://2022-blake3-aes-128-gcm:${enc(PSK32)}@127.0.0.1:${freePort()}`, /must be 16 bytes/],
      [`ss://127.0.0.1:${freePort()}`, /needs method:password/],
    ];
    for (const [url, want] of cases) {
      const r = await runDost(["-L", url]);
      assertEquals(r.code, 1, r.stderr);
      assert(want.test(r.stderr), r.stderr);
    }
  },
});
