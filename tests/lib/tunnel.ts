/**
 * Test clients that open a tunnel through a proxy (SOCKS5 CONNECT or HTTP CONNECT) and move
 * bytes through it, and a throwaway PKI made with openssl (CA, server and client certificates).
 */

const enc = new TextEncoder();
const dec = new TextDecoder();

async function readAtLeast(c: Deno.Conn, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const k = await c.read(out.subarray(got));
    if (k === null) throw new Error(`proxy closed after ${got} of ${n} reply bytes`);
    got += k;
  }
  return out;
}

/** Opens a SOCKS5 (no auth) CONNECT to 127.0.0.1:`target` through the proxy at `port`. */
export async function socks5Tunnel(port: number, target: number): Promise<Deno.TcpConn> {
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await c.write(new Uint8Array([5, 1, 0]));
    const m = await readAtLeast(c, 2);
    if (m[0] !== 5 || m[1] !== 0) throw new Error(`socks5: method reply ${m}`);
    await c.write(new Uint8Array([5, 1, 0, 1, 127, 0, 0, 1, target >> 8, target & 0xff]));
    const r = await readAtLeast(c, 10);
    if (r[1] !== 0) throw new Error(`socks5: connect reply code ${r[1]}`);
    return c;
  } catch (e) {
    c.close();
    throw e;
  }
}

/** Opens an HTTP CONNECT tunnel to 127.0.0.1:`target` through the proxy at `port`. */
export async function httpTunnel(port: number, target: number): Promise<Deno.TcpConn> {
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const t = `127.0.0.1:${target}`;
    await c.write(enc.encode(`CONNECT ${t} HTTP/1.1\r\nHost: ${t}\r\n\r\n`));
    let head = "";
    const b = new Uint8Array(1);
    while (!head.endsWith("\r\n\r\n")) {
      if ((await c.read(b)) === null) throw new Error(`http: proxy closed after "${head}"`);
      head += dec.decode(b);
    }
    if (!/^HTTP\/1\.[01] 200/.test(head)) throw new Error(`http: ${head.split("\r\n")[0]}`);
    return c;
  } catch (e) {
    c.close();
    throw e;
  }
}

/** Deterministic pseudo-random bytes (xorshift32). */
export function patternBytes(n: number, seed = 0x9e3779b9): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/**
 * Sends `data` through `c` (to an echo server) while reading the echo back; half-closes after
 * the last byte and returns everything read until the far end closed.
 */
export async function echoThrough(c: Deno.Conn, data: Uint8Array): Promise<Uint8Array> {
  const writer = (async () => {
    for (let off = 0; off < data.length;) {
      off += await c.write(data.subarray(off, Math.min(data.length, off + 65536)));
    }
    await c.closeWrite();
  })();
  const out = new Uint8Array(data.length);
  let got = 0;
  const buf = new Uint8Array(65536);
  for (;;) {
    const n = await c.read(buf);
    if (n === null) break;
    if (got + n > out.length) throw new Error("echo returned more bytes than sent");
    out.set(buf.subarray(0, n), got);
    got += n;
  }
  await writer;
  c.close();
  return out.subarray(0, got);
}

/** File names of a throwaway PKI: a CA, a server cert for 127.0.0.1/localhost, a client cert. */
export interface TestPKI {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  remove(): Promise<void>;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "null", stderr: "piped" })
    .output();
  if (!out.success) throw new Error(`openssl ${args[0]}: ${dec.decode(out.stderr)}`);
}

/** Makes a CA-signed ECDSA P-256 server and client certificate with openssl. */
export async function makePKI(): Promise<TestPKI> {
  const dir = await Deno.makeTempDir({ prefix: "dost-pki-" });
  await Deno.writeTextFile(
    `${dir}/ext.cnf`,
    "[srv]\nbasicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n" +
      "extendedKeyUsage=serverAuth\n[cli]\nbasicConstraints=CA:FALSE\n" +
      "extendedKeyUsage=clientAuth\n",
  );
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  await openssl(
    ["req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=t"],
    dir,
  );
  for (const [name, ext, cn] of [["srv", "srv", "localhost"], ["cli", "cli", "client"]]) {
    await openssl(
      ["req", ...ec, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${cn}`],
      dir,
    );
    await openssl([
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${name}.pem`,
      "-days",
      "2",
      "-extfile",
      "ext.cnf",
      "-extensions",
      ext,
    ], dir);
  }
  return {
    dir,
    ca: `${dir}/ca.pem`,
    serverCert: `${dir}/srv.pem`,
    serverKey: `${dir}/srv.key`,
    clientCert: `${dir}/cli.pem`,
    clientKey: `${dir}/cli.key`,
    remove: () => Deno.remove(dir, { recursive: true }),
  };
}
