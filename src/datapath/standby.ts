/**
 * The standby role in the data path: a standby relay keeps its rings, IGMP
 * memberships and tables hot and runs every batch through the hot loop as an
 * active one does, but hands nothing to the forwarder. Each forward
 * descriptor the loop wrote — a datagram that would have been sent — is
 * counted on its output as `standby` instead (counters.ts `Out.standby`), so
 * that for every output matched = sent + drops + standby + queued still
 * holds.
 *
 * The worker reads the role (messages.ts `Ctl.role`) once per batch, so a
 * change takes effect at the next batch of every worker; the cost is one
 * `Atomics.load` per batch, and on a standby one counter increment per
 * descriptor instead of the forwarder's work.
 *
 * @module
 */
import { FWD_DESC_WORDS, FwdDescWord } from "../../ffi/mod.ts";
import { Out, OUT_BASE, OUT_WORDS } from "./counters.ts";

const FWW = FWD_DESC_WORDS;
const FW_TMPL = FwdDescWord.tmpl;
const STANDBY = OUT_BASE + Out.standby;

/**
 * Count the first `m` forward descriptors of `fdesc` as `standby` on their
 * outputs (a descriptor's template slot is its output slot) instead of
 * submitting them.
 */
export function countStandby(fdesc: Uint32Array, m: number, counters: Float64Array): void {
  for (let i = 0; i < m; i++) counters[STANDBY + fdesc[i * FWW + FW_TMPL] * OUT_WORDS]++;
}
