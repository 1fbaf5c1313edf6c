/**
 * The stream health metrics (`mcr_stream_*`) of the rules with `health`
 * (stream_monitor.ts, stream_health.ts), registered by `buildRegistry`
 * (metrics.ts) with its counter and gauge makers.
 *
 * @module
 */
import type { StatsResult } from "./results.ts";
import type { StreamStats } from "../relay/stats.ts";
import { STREAM_ALARMS } from "../relay/stream_monitor.ts";

/** A metric family maker of `buildRegistry` (metrics.ts). */
export type MakeMetric = (
  name: string,
  help: string,
  labelNames: string[],
  fill: (set: (l: Record<string, string | number>, v: number) => void, s: StatsResult) => void,
) => unknown;
/** One rule of a stats snapshot. */
export type RuleOf = StatsResult["rules"][number];

/** The stream health metrics of the rules with `health` (stream_monitor.ts, stream_health.ts). */
export function streamMetrics(
  counter: MakeMetric,
  gauge: MakeMetric,
  rl: string[],
  rlab: (r: RuleOf) => Record<string, string>,
): void {
  const each = (
    make: MakeMetric,
    name: string,
    help: string,
    value: (r: RuleOf & { stream: StreamStats }) => number | undefined,
  ) =>
    make(name, help, rl, (set, s) => {
      for (const r of s.rules) {
        if (!r.stream) continue;
        const v = value(r as RuleOf & { stream: StreamStats });
        if (v !== undefined) set(rlab(r), v);
      }
    });
  gauge(
    "mcr_stream_alarm",
    "1 for the stream's current alarm (ok, silent, low_rate), 0 for the others (rules with health).",
    [...rl, "alarm"],
    (set, s) => {
      for (const r of s.rules) {
        if (!r.stream) continue;
        for (const a of STREAM_ALARMS) set({ ...rlab(r), alarm: a }, r.stream.alarm === a ? 1 : 0);
      }
    },
  );
  each(
    gauge,
    "mcr_stream_packets_per_second",
    "Datagrams per second over the last second.",
    (r) => r.stream.pps,
  );
  each(gauge, "mcr_stream_bits_per_second", "UDP payload bits per second over the last second.", (
    r,
  ) => r.stream.bps);
  each(
    gauge,
    "mcr_stream_last_packet_age_seconds",
    "Seconds since the stream's last datagram (absent until one came).",
    (r) => r.stream.last_packet_age_ms === null ? undefined : r.stream.last_packet_age_ms / 1000,
  );
  each(
    counter,
    "mcr_stream_rtp_packets_total",
    "Datagrams analysed as RTP.",
    (r) => r.stream.rtp?.packets,
  );
  each(
    counter,
    "mcr_stream_rtp_invalid_total",
    "Datagrams that were not RTP version 2.",
    (r) => r.stream.rtp?.invalid,
  );
  each(
    gauge,
    "mcr_stream_rtp_lost",
    "RTP sequence numbers missing (RFC 3550 cumulative lost: a late arrival takes one back).",
    (r) => r.stream.rtp?.lost,
  );
  each(
    counter,
    "mcr_stream_rtp_duplicates_total",
    "RTP sequence numbers seen twice.",
    (r) => r.stream.rtp?.duplicates,
  );
  each(
    counter,
    "mcr_stream_rtp_reordered_total",
    "RTP datagrams that came after a higher sequence number.",
    (r) => r.stream.rtp?.reordered,
  );
  each(
    counter,
    "mcr_stream_rtp_resyncs_total",
    "Restarts of the RTP sequence analysis (new SSRC, or a jump).",
    (r) => r.stream.rtp?.resyncs,
  );
  each(
    gauge,
    "mcr_stream_rtp_jitter_seconds",
    "RFC 3550 interarrival jitter.",
    (r) => r.stream.rtp === undefined ? undefined : r.stream.rtp.jitter_ms / 1000,
  );
  each(
    counter,
    "mcr_stream_ts_packets_total",
    "MPEG-TS packets analysed.",
    (r) => r.stream.ts?.packets,
  );
  each(
    counter,
    "mcr_stream_ts_sync_errors_total",
    "MPEG-TS sync byte errors (TR 101 290 1.2), and payloads not a multiple of 188 bytes.",
    (r) => r.stream.ts?.sync_errors,
  );
  each(
    counter,
    "mcr_stream_ts_cc_errors_total",
    "MPEG-TS continuity counter errors over all PIDs (TR 101 290 1.4).",
    (r) => r.stream.ts?.cc_errors,
  );
}

/**
 * The metrics of the paths of rules with redundant inputs (`mcr_path_*`,
 * src/datapath/arbiter.ts), labelled with the configured rule's name and the
 * input's index, interface and group.
 */
export function pathMetrics(counter: MakeMetric, gauge: MakeMetric): void {
  const pl = ["rule", "input", "interface", "group"];
  const each = (
    make: MakeMetric,
    name: string,
    help: string,
    value: (p: NonNullable<RuleOf["redundancy"]>) => number,
  ) =>
    make(name, help, pl, (set, s) => {
      for (const r of s.rules) {
        const p = r.redundancy;
        if (!p) continue;
        set(
          { rule: p.rule, input: p.input, interface: r.input.interface, group: r.input.group },
          value(p),
        );
      }
    });
  each(
    counter,
    "mcr_path_received_total",
    "Datagrams a path of a redundant rule received.",
    (p) => p.received,
  );
  each(
    counter,
    "mcr_path_merged_duplicates_total",
    "Copies a path dropped because another path had forwarded them first.",
    (p) => p.merged_duplicate,
  );
  each(
    counter,
    "mcr_path_late_total",
    "Datagrams a path dropped as too far behind the stream (window, reorder_ms).",
    (p) => p.late,
  );
  each(
    gauge,
    "mcr_path_active",
    "1 when the path forwards (failover: the active one; merge: every path).",
    (p) => p.active ? 1 : 0,
  );
  each(
    counter,
    "mcr_path_switches_total",
    "Switches of a failover rule's active path (the rule's count, on each of its paths).",
    (p) => p.switches,
  );
}
