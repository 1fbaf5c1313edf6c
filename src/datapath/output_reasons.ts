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
