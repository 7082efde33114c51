/**
 * The self-signed server certificate used when a TLS listener has none configured (as gost
 * does): ECDSA P-256, valid for a year, `CA:FALSE` with SANs (rustls refuses a CA certificate as
 * a server's). Made once per process, on first use: the x509 library is loaded only then, so
 * services without TLS start as fast as before.
 */

let cached: Promise<{ cert: string; key: string }> | undefined;

/** The process's self-signed certificate and key (PEM), generated on the first call. */
export function selfSignedCert(): Promise<{ cert: string; key: string }> {
  cached ??= generate();
  return cached;
}

async function generate(): Promise<{ cert: string; key: string }> {
  const x509 = await import("@peculiar/x509");
  x509.cryptoProvider.set(crypto);
  const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = await crypto.subtle.generateKey(alg, true, ["sign", "verify"]);
  const now = Date.now();
  const serial = crypto.getRandomValues(new Uint8Array(16));
  serial[0] &= 0x7f; // a positive serial number
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: [...serial].map((b) => b.toString(16).padStart(2, "0")).join(""),
    name: "CN=dost",
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 365 * 86400_000),
    keys,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        { type: "dns", value: "localhost" },
        { type: "ip", value: "127.0.0.1" },
        { type: "ip", value: "::1" },
      ]),
    ],
  });
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", keys.privateKey));
  return { cert: cert.toString("pem"), key: pem("PRIVATE KEY", pkcs8) };
}

function pem(label: string, der: Uint8Array): string {
  let b64 = "";
  for (let i = 0; i < der.length; i += 3 * 1024) {
    b64 += btoa(String.fromCharCode(...der.subarray(i, i + 3 * 1024)));
  }
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}
