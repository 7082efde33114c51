/**
 * Shadowsocks AEAD UDP packets (SIP004): `salt ‖ AEAD(subkey(salt), nonce 0, address ‖ payload)
 * ‖ tag`, one datagram each, a fresh salt per packet. Client packets carry the target address,
 * server packets the address the payload came from. The `none` method sends `address ‖ payload`
 * in the clear. SIP022 UDP (AES-ECB packet headers, sessions) is not implemented.
 */
import { ConfigError } from "../../core/errors.ts";
import { type Aead, newAead, TAG_SIZE } from "../../crypto/aead.ts";
import { decodeAddr, type SocksAddr } from "../socks/addr.ts";
import { aeadSubkey, type SsCipher } from "./cipher.ts";
import { SsAuthError } from "./stream.ts";

const ZERO_NONCE = new Uint8Array(12);

/** Fails at start-up for methods whose UDP form dost does not speak. */
export function checkPacketMethod(c: SsCipher, where: string): void {
  if (c.method.kind === "2022") {
    throw new ConfigError(
      `${where}: shadowsocks 2022 over UDP (ssu with ${c.method.name}) is not supported yet`,
    );
  }
}

/** Seals and opens packets of one cipher (one AEAD context per direction, rekeyed per packet). */
export class SsPacketCodec {
  private sealer?: Aead;
  private opener?: Aead;

  constructor(private readonly cipher: SsCipher) {}

  /** `address ‖ payload` → one packet. */
  seal(addr: Uint8Array, payload: Uint8Array): Uint8Array {
    const m = this.cipher.method;
    const plainLen = addr.length + payload.length;
    if (m.kind === "none") {
      const out = new Uint8Array(plainLen);
      out.set(addr);
      out.set(payload, addr.length);
      return out;
    }
    const salt = crypto.getRandomValues(new Uint8Array(m.saltSize));
    const subkey = aeadSubkey(this.cipher.key, salt);
    if (this.sealer) this.sealer.rekey(subkey);
    else this.sealer = newAead(m.algo!, subkey, true);
    const plain = new Uint8Array(plainLen);
    plain.set(addr);
    plain.set(payload, addr.length);
    const out = new Uint8Array(m.saltSize + plainLen + TAG_SIZE);
    out.set(salt);
    this.sealer.seal(ZERO_NONCE, plain, out.subarray(m.saltSize));
    return out;
  }

  /** One packet → its address and payload; throws SsAuthError when it does not open. */
  open(packet: Uint8Array): { addr: SocksAddr; payload: Uint8Array } {
    const m = this.cipher.method;
    let plain = packet;
    if (m.kind !== "none") {
      if (packet.length < m.saltSize + TAG_SIZE) {
        throw new SsAuthError(`shadowsocks: ${packet.length}-byte packet is too short`);
      }
      const subkey = aeadSubkey(this.cipher.key, packet.subarray(0, m.saltSize));
      if (this.opener) this.opener.rekey(subkey);
      else this.opener = newAead(m.algo!, subkey, false);
      plain = new Uint8Array(packet.length - m.saltSize - TAG_SIZE);
      if (!this.opener.open(ZERO_NONCE, packet.subarray(m.saltSize), plain)) {
        throw new SsAuthError("shadowsocks: packet authentication failed");
      }
    }
    const { addr, next } = decodeAddr(plain, 0);
    return { addr, payload: plain.subarray(next) };
  }
}
