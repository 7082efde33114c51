/**
 * The gRPC tunnel transport (gost's `GostTunel/Tunnel` service): dost ↔ dost over TLS, over
 * cleartext (`grpcInsecure=true`) and with a custom `path`; a byte-exact 20 MB transfer, 20
 * parallel tunnels on one HTTP/2 connection, a raw node:http2 gRPC client checking the wire
 * (framing, status trailers), and bad input (garbage, a truncated preface, a bad gRPC frame,
 * an unknown method, a path mismatch) that must not hurt the service.
 */
import * as http2 from "node:http2";
import { assert, assertEquals, assertStringIncludes } from "./lib/assert.ts";
import {
  curl,
  freePort,
  IT,
  rawExchange,
  sha256,
  startDost,
  startEcho,
  startOrigin,
  waitForLog,
} from "./lib/harness.ts";
import { echoThrough, patternBytes, socks5Tunnel } from "./lib/tunnel.ts";
import { decodeChunk, encodeChunk } from "../src/transport/grpc/codec.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A gost v2 JSON config with one route per entry (each its own chain). */
async function routesFile(routes: { local: string; node: string }[]): Promise<string> {
  const file = await Deno.makeTempFile({ suffix: ".json" });
  await Deno.writeTextFile(
    file,
    JSON.stringify({
      Routes: routes.map((r) => ({ ServeNodes: [r.local], ChainNodes: [r.node] })),
    }),
  );
  return file;
}

Deno.test({
  name: "grpc: socks5+grpc over TLS, insecure and a custom path: curl, 20 MB sha256, one session",
  ...IT,
  fn: async () => {
    const origin = startOrigin();
    const echo = startEcho();
    const [s1, s2, s3, c1, c2, c3, f1] = Array.from({ length: 7 }, freePort);
    const nodes = [
      `socks5+grpc://127.0.0.1:${s1}`,
      `socks5+grpc://127.0.0.1:${s2}?grpcInsecure=true`,
      `socks5+grpc://127.0.0.1:${s3}?grpc.insecure=true&path=/svc/a/b`,
    ];
    const server = await startDost(["-D", ...nodes.flatMap((n) => ["-L", n])]);
    const file = await routesFile([
      { local: `socks5://127.0.0.1:${c1}`, node: nodes[0] },
      { local: `socks5://127.0.0.1:${c2}`, node: nodes[1] },
      { local: `socks5://127.0.0.1:${c3}`, node: nodes[2] },
      { local: `tcp://127.0.0.1:${f1}/127.0.0.1:${echo.port}`, node: nodes[0] },
    ]);
    const client = await startDost(["-D", "-C", file], { services: 4 })
      .finally(() => Deno.remove(file));
    try {
      for (const c of [c1, c2, c3]) {
        const r = await curl([
          "-x",
          `socks5h://127.0.0.1:${c}`,
          `http://127.0.0.1:${origin.port}/g`,
        ]);
        assertEquals(r.stdout, "hello /g", `${c}: ${r.stderr}`);
      }
      const big = patternBytes(20 << 20, 777);
      const back = await echoThrough(await Deno.connect({ hostname: "127.0.0.1", port: f1 }), big);
      assertEquals(back.length, big.length);
      assertEquals(await sha256(back), await sha256(big));
      const small = patternBytes(64 << 10, 5);
      for (const c of [c1, c2, c3]) {
        const backs = await Promise.all(
          Array.from(
            { length: 20 },
            async () => echoThrough(await socks5Tunnel(c, echo.port), small),
          ),
        );
        for (const x of backs) assertEquals(await sha256(x), await sha256(small));
      }
      // Per server service: one HTTP/2 connection per client node (service-0 serves two routes).
      for (const [svc, want] of [[0, 2], [1, 1], [2, 1]]) {
        const re = new RegExp(`\\[service-${svc}\\] [0-9.:]+: grpc session started`, "g");
        assertEquals(server.logs().match(re)?.length, want, `service-${svc}:\n${server.logs()}`);
      }
    } finally {
      await client.stop();
      await server.stop();
      await origin.close();
      echo.close();
    }
  },
});

/** A cleartext HTTP/2 session to 127.0.0.1:port. */
async function h2c(port: number): Promise<http2.ClientHttp2Session> {
  const s = http2.connect(`http://127.0.0.1:${port}`);
  s.on("error", () => {});
  await new Promise<void>((res, rej) => {
    s.once("remoteSettings", () => res());
    s.once("error", rej);
  });
  return s;
}

/** One call: sends `body` (raw gRPC bytes), collects the response bytes, headers and trailers. */
function call(
  s: http2.ClientHttp2Session,
  path: string,
  body: Uint8Array,
  contentType = "application/grpc",
): Promise<{ status: number; grpcStatus: string; grpcMessage: string; data: Uint8Array }> {
  return new Promise((resolve, reject) => {
    const req = s.request({
      ":method": "POST",
      ":path": path,
      "content-type": contentType,
      te: "trailers",
    }, { endStream: false });
    let status = 0;
    let gs = "";
    let gm = "";
    const chunks: Uint8Array[] = [];
    const meta = (h: http2.IncomingHttpHeaders) => {
      if (h[":status"]) status = Number(h[":status"]);
      if (h["grpc-status"] !== undefined) gs = String(h["grpc-status"]);
      if (h["grpc-message"] !== undefined) gm = decodeURIComponent(String(h["grpc-message"]));
    };
    req.on("response", meta);
    req.on("trailers", meta);
    req.on("data", (d: Uint8Array) => chunks.push(new Uint8Array(d)));
    req.on("error", reject);
    req.on("close", () => {
      const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      let o = 0;
      for (const c of chunks) {
        all.set(c, o);
        o += c.length;
      }
      resolve({ status, grpcStatus: gs, grpcMessage: gm, data: all });
    });
    req.write(body);
    req.end();
  });
}

/** Decodes a sequence of gRPC messages into the concatenated Chunk data. */
function chunksData(b: Uint8Array): string {
  let out = "";
  for (let o = 0; o < b.length;) {
    const len = new DataView(b.buffer, b.byteOffset + o + 1, 4).getUint32(0);
    out += dec.decode(decodeChunk(b.subarray(o + 5, o + 5 + len)));
    o += 5 + len;
  }
  return out;
}

Deno.test({
  name: "grpc: the wire with a raw gRPC client; bad frames, unknown method, garbage, preface",
  ...IT,
  fn: async () => {
    const echo = startEcho();
    const [p, ptls] = [freePort(), freePort()];
    const server = await startDost([
      "-D",
      "-L",
      `tcp+grpc://127.0.0.1:${p}/127.0.0.1:${echo.port}?grpcInsecure=true`,
      "-L",
      `tcp+grpc://127.0.0.1:${ptls}/127.0.0.1:${echo.port}`,
    ]);
    try {
      const s = await h2c(p);
      // A good call: two Chunks in, the echo comes back as Chunks, then grpc-status 0.
      const good = await call(
        s,
        "/GostTunel/Tunnel",
        new Uint8Array([...encodeChunk(enc.encode("hello ")), ...encodeChunk(enc.encode("grpc"))]),
      );
      assertEquals(good.status, 200);
      assertEquals(chunksData(good.data), "hello grpc");
      assertEquals(good.grpcStatus, "0");
      // A compressed message (flag 1): the call ends with INTERNAL and a message.
      const bad = await call(s, "/GostTunel/Tunnel", new Uint8Array([1, 0, 0, 0, 2, 0x0a, 0]));
      assertEquals(bad.grpcStatus, "13");
      assertStringIncludes(bad.grpcMessage, "compressed");
      // A truncated protobuf inside a well-framed message.
      const trunc = await call(s, "/GostTunel/Tunnel", new Uint8Array([0, 0, 0, 0, 2, 0x0a, 9]));
      assertEquals(trunc.grpcStatus, "13");
      assertStringIncludes(trunc.grpcMessage, "truncated");
      // An unknown method: UNIMPLEMENTED; not gRPC: 415.
      const unknown = await call(s, "/Other/Tunnel", encodeChunk(enc.encode("x")));
      assertEquals([unknown.status, unknown.grpcStatus], [200, "12"]);
      const notGrpc = await call(s, "/GostTunel/Tunnel", enc.encode("x"), "text/plain");
      assertEquals(notGrpc.status, 415);
      s.close();
      // Garbage and a truncated preface on the cleartext listener, garbage on the TLS one.
      await rawExchange(p, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", { ms: 2000 });
      await rawExchange(p, "PRI * HTTP/2.0\r\n", { ms: 500, closeWrite: true });
      await rawExchange(ptls, "not tls at all", { ms: 2000, closeWrite: true });
      await waitForLog(server, /grpc session failed: .*preface/);
      await waitForLog(server, /127\.0\.0\.1:\d+: grpc session failed: (?!.*preface)/);
      // Still serving, on a new session.
      const s2 = await h2c(p);
      const again = await call(s2, "/GostTunel/Tunnel", encodeChunk(enc.encode("again")));
      assertEquals(chunksData(again.data), "again");
      s2.close();
    } finally {
      await server.stop();
      echo.close();
    }
  },
});

Deno.test({
  name: "grpc: a path mismatch between dost nodes fails with the gRPC status; keepalive rejected",
  ...IT,
  fn: async () => {
    const echo = startEcho();
    const [s, c] = [freePort(), freePort()];
    const server = await startDost(["-L", `socks5+grpc://127.0.0.1:${s}?grpcInsecure=true`]);
    const client = await startDost([
      "-L",
      `socks5://127.0.0.1:${c}`,
      "-F",
      `socks5+grpc://127.0.0.1:${s}?grpcInsecure=true&path=/nope`,
    ]);
    try {
      let failed = false;
      try {
        await echoThrough(await socks5Tunnel(c, echo.port), enc.encode("x"));
      } catch {
        failed = true;
      }
      assert(failed, "a call to an unknown method must fail");
      await waitForLog(client, "grpc: status 12: unknown method /nope/Tunnel");
    } finally {
      await client.stop();
      await server.stop();
      echo.close();
    }
    const { runDost } = await import("./lib/harness.ts");
    const r = await runDost(["-L", `grpc://127.0.0.1:${freePort()}?keepalive=true`]);
    assertEquals(r.code, 1);
    assertStringIncludes(r.stderr, "not supported yet");
  },
});

Deno.test({
  name: "grpc: grpc as hop 2 of a chain (over an h2c tunnel of hop 1), repeated and parallel",
  ...IT,
  fn: async () => {
    const echo = startEcho();
    const [hop1, hop2, a] = [freePort(), freePort(), freePort()];
    const server = await startDost([
      "-L",
      `socks5+h2c://127.0.0.1:${hop1}`,
      "-L",
      `socks5+grpc://127.0.0.1:${hop2}`,
    ]);
    const client = await startDost([
      "-L",
      `socks5://127.0.0.1:${a}`,
      "-F",
      `socks5+h2c://127.0.0.1:${hop1}`,
      "-F",
      `socks5+grpc://127.0.0.1:${hop2}`,
    ]);
    try {
      const data = patternBytes(1 << 20, 21);
      const want = await sha256(data);
      for (let i = 0; i < 3; i++) {
        assertEquals(await sha256(await echoThrough(await socks5Tunnel(a, echo.port), data)), want);
      }
      const backs = await Promise.all(
        Array.from({ length: 8 }, async () => echoThrough(await socks5Tunnel(a, echo.port), data)),
      );
      for (const x of backs) assertEquals(await sha256(x), want);
    } finally {
      await client.stop();
      await server.stop();
      echo.close();
    }
  },
});
