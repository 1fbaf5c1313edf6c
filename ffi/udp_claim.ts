/**
 * `UdpClaim`: a UDP port of one of the host's own addresses held on an
 * input interface so that the kernel does not answer ICMP port unreachable
 * to a unicast input's sender (csrc/udpclaim.c). Which claims the rules need
 * is the relay's business (src/relay/port_claims.ts).
 *
 * @module
 */
import { hton32, lib, open } from "./util.ts";

/** A held UDP port (see `mcr_udp_claim_*` in csrc/include/mcr.h). */
export class UdpClaim implements Disposable {
  #ptr: Deno.PointerObject | null;

  /**
   * Claim `port` of `addr` on `ifindex`. Throws McrError: EADDRNOTAVAIL when
   * `addr` is not the host's, EADDRINUSE when another socket holds the port,
   * EACCES for a privileged port without CAP_NET_BIND_SERVICE.
   * @param ifindex input interface index
   * @param addr address (host order)
   * @param port UDP port
   */
  constructor(ifindex: number, addr: number, port: number) {
    this.#ptr = open(
      "mcr_udp_claim_open",
      (out, err, n) => lib().sym.mcr_udp_claim_open(ifindex, hton32(addr), port, out, err, n),
    );
  }

  /** Release the port: the kernel answers for it again (idempotent). */
  close(): void {
    if (!this.#ptr) return;
    lib().sym.mcr_udp_claim_close(this.#ptr);
    this.#ptr = null;
  }

  /** Same as close(). */
  [Symbol.dispose](): void {
    this.close();
  }
}
