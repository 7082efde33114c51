/**
 * Every stream transport × {http, socks5, relay}: a dost client (`-L tcp://:C/echo -F
 * proto+transport://:S`) and a dost server (`-L proto+transport://:S`), 50 MB echoed byte-exact
 * with a half-close at the end.
 */
import { assertEquals } from "./lib/assert.ts";
import { freePort, IT, sha256, startDost, startEcho, talk } from "./lib/harness.ts";

const TRANSPORTS = [
  "tcp",
  "tls",
  "mtls",
  "ws",
  "wss",
  "mws",
  "mwss",
  "mtcp",
  "h2",
  "h2c",
  "grpc",
  "ohttp",
  "otls",
];
const PROTOCOLS = ["http", "socks5", "relay"];
const SIZE = 50 << 20;

let data: Uint8Array | undefined;
let digest = "";
async function payload(): Promise<Uint8Array> {
  if (data) return data;
  const block = new Uint8Array(1 << 20);
  for (let i = 0; i < block.length; i += 65536) {
    crypto.getRandomValues(block.subarray(i, i + 65536));
  }
  data = new Uint8Array(SIZE);
  for (let i = 0; i < SIZE; i += block.length) data.set(block, i);
  data[4242] ^= 1;
  digest = await sha256(data);
  return data;
}

for (const proto of PROTOCOLS) {
  Deno.test({
    name: `transport matrix: ${proto} over ${TRANSPORTS.join(", ")}: 50 MB each, byte-exact`,
    ...IT,
    fn: async (t) => {
      const echo = startEcho();
      const bytes = await payload();
      try {
        for (const tr of TRANSPORTS) {
          await t.step(`${proto}+${tr}`, async () => {
            const scheme = tr === "tcp" ? proto : `${proto}+${tr}`;
            const [s, c] = [freePort(), freePort()];
            const server = await startDost(["-L", `${scheme}://127.0.0.1:${s}`]);
            const client = await startDost([
              "-L",
              `tcp://127.0.0.1:${c}/127.0.0.1:${echo.port}`,
              "-F",
              `${scheme}://127.0.0.1:${s}`,
            ]);
            try {
              const out = await talk(c, bytes, { closeWrite: true, safetyMs: 120_000 });
              assertEquals(out.bytes.length, bytes.length, `${scheme}: length`);
              assertEquals(await sha256(out.bytes), digest, `${scheme}: sha256`);
            } finally {
              await client.stop();
              await server.stop();
            }
          });
        }
      } finally {
        echo.close();
      }
    },
  });
}
