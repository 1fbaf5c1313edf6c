/**
 * The lines under a `list` or `stats` table about what a rule does beyond
 * forwarding: stream health and policing (rules with `health`,
 * `rate_limit`), and the paths of rules with redundant inputs. format.ts
 * re-exports them.
 *
 * @module
 */
import type { ListedRule, RuleWithRate } from "../control/results.ts";
import { mbit, num, rate } from "./numbers.ts";
import { lineSafe } from "./term_safe.ts";
import { hostPort } from "../common/net6.ts";

/**
 * The stream health of the rules with `health` and the policing of rules with
 * `rate_limit`, one line each: alarm (and why), rate, last datagram, RTP and
 * MPEG-TS counts.
 */
export function streamLines(
  rules: readonly Pick<ListedRule, "name" | "stream" | "policed">[],
): string[] {
  const out: string[] = [];
  for (const r of rules) {
    const s = r.stream;
    const parts: string[] = [];
    if (s) {
      parts.push(`stream ${s.alarm}${s.reason ? ` (${s.reason})` : ""}`);
      parts.push(`${rate(s.pps)} pps ${mbit(s.bps)} Mbit/s`);
      parts.push(
        s.last_packet_age_ms === null
          ? "no datagram yet"
          : `last ${num(s.last_packet_age_ms)} ms ago`,
      );
      if (s.rtp) {
        parts.push(
          `rtp lost ${num(s.rtp.lost)} dup ${num(s.rtp.duplicates)} reordered ` +
            `${num(s.rtp.reordered)} jitter ${s.rtp.jitter_ms.toFixed(3)} ms` +
            (s.rtp.invalid ? ` invalid ${num(s.rtp.invalid)}` : ""),
        );
      }
      if (s.ts) {
        parts.push(`ts cc_errors ${num(s.ts.cc_errors)} sync_errors ${num(s.ts.sync_errors)}`);
      }
    }
    if (r.policed !== undefined) parts.push(`policed ${num(r.policed)}`);
    if (parts.length) out.push(lineSafe(`${r.name}: ${parts.join("; ")}`));
  }
  return out;
}

/** One path of a redundant rule as the lines below show it. */
interface PathFacts {
  active: boolean;
  received: number;
  merged_duplicate: number;
  late: number;
  inactive: number;
}

/** "received 9,512, contributed 500, duplicates 9,012, late 0" (and inactive for a failover). */
function pathCounts(p: PathFacts, contributed: number, failover: boolean): string {
  return `${failover ? (p.active ? "ACTIVE, " : "standby path, ") : ""}received ` +
    `${num(p.received)}, contributed ${num(contributed)}, duplicates ${num(p.merged_duplicate)}` +
    `, late ${num(p.late)}${failover ? `, inactive ${num(p.inactive)}` : ""}`;
}

/**
 * The paths of the rules with redundant inputs, one line each: `list` shows
 * a rule's paths (`paths`), `stats` each path's rule (`redundancy`).
 */
export function pathLines(
  rules: readonly (Pick<ListedRule, "name" | "paths" | "redundancy"> | RuleWithRate)[],
): string[] {
  const out: string[] = [];
  for (const r of rules) {
    if ("paths" in r && r.paths) {
      const failover = r.redundancy?.mode === "failover";
      for (const p of r.paths) {
        out.push(lineSafe(
          `${r.name} input ${p.input} (${p.interface} ${hostPort(p.group, p.port)}, ${p.state}): ` +
            pathCounts(p, p.contributed, failover) +
            (p.missed !== undefined ? `, missed ${num(p.missed)}` : ""),
        ));
      }
    } else if ("redundancy" in r && r.redundancy && "packets" in r) {
      const p = r.redundancy;
      out.push(lineSafe(
        `${r.name}: input ${p.input} of ${p.rule} (${p.mode}): ` +
          pathCounts(p, r.packets, p.mode === "failover"),
      ));
    }
  }
  return out;
}
