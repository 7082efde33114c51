/**
 * Shadowsocks AEAD UDP packets (SIP004): `salt ‖ AEAD(subkey(salt), nonce 0, address ‖ payload)
 * ‖ tag`, one datagram each, a fresh salt per packet. Client packets carry the target address,
 * server packets the address the payload came from. The `none` method sends `address ‖ payload`
 * in the clear. SIP022 (2022) methods use their own session-based format: packet2022.ts.
 *
 * The codec works in place on reused buffers (a packet costs no allocation): what `seal` and
 * `open` return is valid until the next call — send it at once, or copy it.
 */
import { type Aead, newAead, TAG_SIZE } from "../../crypto/aead.ts";
import { decodeAddr, type SocksAddr } from "../socks/addr.ts";
import { aeadSubkey, type SsCipher } from "./cipher.ts";
import { SsAuthError } from "./stream.ts";
import { check2022 } from "./ss2022.ts";

const ZERO_NONCE = new Uint8Array(12);
/** Largest packet handled (a UDP payload). */
const MAX_PACKET = 65535;

/** Seals one client→server or server→client packet and opens the other direction's. */
export interface PacketCodec {
  /** `address ‖ payload` → one packet (valid until the next seal: send it at once, or copy). */
  seal(addr: Uint8Array, payload: Uint8Array): Uint8Array;
  /** One packet → its address and payload; throws SsAuthError when it does not open. */
  open(packet: Uint8Array): { addr: SocksAddr; payload: Uint8Array };
}

/** Fails at start-up for what dost's ssu does not speak (2022 multi-user identity headers). */
export function checkPacketMethod(c: SsCipher, where: string): void {
  if (c.method.kind === "2022") check2022(c, where);
}

/** Seals and opens packets of one cipher (one AEAD context per direction, rekeyed per packet). */
export class SsPacketCodec implements PacketCodec {
  private sealer?: Aead;
  private opener?: Aead;
  private readonly subkey: Uint8Array;
  private readonly salt: Uint8Array;
  /** Plaintext staging for seal, output of open. */
  private readonly plain = new Uint8Array(MAX_PACKET);
  private readonly out = new Uint8Array(MAX_PACKET + 64);

  constructor(private readonly cipher: SsCipher) {
    this.subkey = new Uint8Array(cipher.method.keySize);
    this.salt = new Uint8Array(cipher.method.saltSize);
  }

  /** `address ‖ payload` → one packet (a view valid until the next seal). */
  seal(addr: Uint8Array, payload: Uint8Array): Uint8Array {
    const m = this.cipher.method;
    const plainLen = addr.length + payload.length;
    if (m.kind === "none") {
      this.out.set(addr);
      this.out.set(payload, addr.length);
      return this.out.subarray(0, plainLen);
    }
    crypto.getRandomValues(this.salt);
    aeadSubkey(this.cipher.key, this.salt, this.subkey);
    if (this.sealer) this.sealer.rekey(this.subkey);
    else this.sealer = newAead(m.algo!, this.subkey, true);
    const plain = this.plain.subarray(0, plainLen);
    plain.set(addr);
    plain.set(payload, addr.length);
    const total = m.saltSize + plainLen + TAG_SIZE;
    this.out.set(this.salt);
    this.sealer.seal(ZERO_NONCE, plain, this.out.subarray(m.saltSize, total));
    return this.out.subarray(0, total);
  }

  /**
   * One packet → its address and payload (a view valid until the next open); throws
   * SsAuthError when it does not open.
   */
  open(packet: Uint8Array): { addr: SocksAddr; payload: Uint8Array } {
    const m = this.cipher.method;
    let plain = packet;
    if (m.kind !== "none") {
      if (packet.length < m.saltSize + TAG_SIZE) {
        throw new SsAuthError(`shadowsocks: ${packet.length}-byte packet is too short`);
      }
      aeadSubkey(this.cipher.key, packet.subarray(0, m.saltSize), this.subkey);
      if (this.opener) this.opener.rekey(this.subkey);
      else this.opener = newAead(m.algo!, this.subkey, false);
      plain = this.plain.subarray(0, packet.length - m.saltSize - TAG_SIZE);
      if (!this.opener.open(ZERO_NONCE, packet.subarray(m.saltSize), plain)) {
        throw new SsAuthError("shadowsocks: packet authentication failed");
      }
    }
    const { addr, next } = decodeAddr(plain, 0);
    return { addr, payload: plain.subarray(next) };
  }
}
