/**
 * Words for why an output cannot deliver, shared by the worker's output
 * states (outputs.ts).
 *
 * @module
 */
import { Errno } from "../../ffi/errors.ts";

/** Reason for a ring's `down` errno. */
export function downReason(name: string, errno: number): string {
  switch (errno) {
    case Errno.ENETDOWN:
      return `output interface ${name} is down`;
    case Errno.ENOLINK:
      return `output interface ${name} has no carrier`;
    default:
      return `output interface ${name} is gone`;
  }
}

/**
 * Why an output could not be installed, in the operator's terms: libmcr's
 * messages name its call and the output's template index
 * (`mcr_fwd_set_template: template 12: bind 10.0.0.5:0 on eth1 (EADDRNOTAVAIL)`),
 * which mean nothing outside the relay; the rest says what failed, where and
 * why.
 */
export function installReason(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.replace(/^mcr_\w+: /, "").replace(/\btemplate \d+: /g, "");
}
