/**
 * A rule's `rate_limit` and `health`, and an output's `rate_limit`: their
 * checks beyond structure (which rules and fanout settings may use them) and
 * their normalized forms with defaults applied. What they do:
 * src/datapath/policer.ts (policing), src/datapath/stream_health.ts (payload
 * analysis) and src/relay/stream_monitor.ts (rates and alarms).
 *
 * @module
 */
import { isRecord } from "./errors.ts";
import {
  DEFAULT_CLOCK_RATE,
  DEFAULT_SILENCE_MS,
  DEFAULT_WORKERS,
  MAX_ANALYSED_RULES,
  MAX_HEALTH_RULES,
} from "./limits.ts";
import type { PayloadKind, RawHealth, RawRateLimit } from "./schema.ts";

/** A `rate_limit` with its bucket sizes resolved. */
export interface RateLimitConfig {
  /** Packets per second (absent: no packet limit). */
  pps?: number;
  /** Bits per second of UDP payload (absent: no bit limit). */
  bps?: number;
  /** Bucket size in packets (default: {@link DEFAULT_BURST_S} of `pps`, at least 1). */
  burst_packets: number;
  /** Bucket size in bytes (default: {@link DEFAULT_BURST_S} of `bps`, at least 1500). */
  burst_bytes: number;
}

/** A rule's `health` with its defaults applied. */
export interface HealthConfig {
  /** `silent` after this long without a datagram (ms). */
  silence_ms: number;
  /** `low_rate` under this many packets per second (absent: never). */
  min_pps?: number;
  /** Payload analysis in the data path (absent: none). */
  payload?: PayloadKind;
  /** RTP timestamp clock rate (Hz). */
  clock_rate: number;
}

/** A default bucket holds this much time of the rate (s). */
export const DEFAULT_BURST_S = 0.05;
/** A default byte bucket holds at least one full-size Ethernet datagram. */
export const MIN_DEFAULT_BURST_BYTES = 1500;

/** The normalized form of a valid `rate_limit`. */
export function normalizeRateLimit(r: RawRateLimit): RateLimitConfig {
  const out: RateLimitConfig = {
    burst_packets: r.burst_packets ?? Math.max(1, Math.ceil((r.pps ?? 0) * DEFAULT_BURST_S)),
    burst_bytes: r.burst_bytes ??
      Math.max(MIN_DEFAULT_BURST_BYTES, Math.ceil(((r.bps ?? 0) / 8) * DEFAULT_BURST_S)),
  };
  if (r.pps !== undefined) out.pps = r.pps;
  if (r.bps !== undefined) out.bps = r.bps;
  return out;
}

/** The normalized form of a valid `health`. */
export function normalizeHealth(h: RawHealth): HealthConfig {
  const out: HealthConfig = {
    silence_ms: h.silence_ms ?? DEFAULT_SILENCE_MS,
    clock_rate: h.clock_rate ?? DEFAULT_CLOCK_RATE,
  };
  if (h.min_pps !== undefined) out.min_pps = h.min_pps;
  if (h.payload !== undefined) out.payload = h.payload;
  return out;
}

/** A problem at a path relative to the rule. */
export interface StreamIssue {
  /** Path relative to the rule. */
  path: (string | number)[];
  /** What is wrong. */
  message: string;
}

/** Problems of one `rate_limit` (as parsed JSON; only fields of the right kind are looked at). */
export function rateLimitIssues(v: unknown, at: (string | number)[]): StreamIssue[] {
  if (!isRecord(v)) return [];
  const issues: StreamIssue[] = [];
  if (v.pps === undefined && v.bps === undefined) {
    issues.push({ path: at, message: "needs pps, bps or both (the limit to enforce)" });
  }
  if (v.burst_packets !== undefined && v.pps === undefined) {
    issues.push({ path: [...at, "burst_packets"], message: "applies to a pps limit; give pps" });
  }
  if (v.burst_bytes !== undefined && v.bps === undefined) {
    issues.push({ path: [...at, "burst_bytes"], message: "applies to a bps limit; give bps" });
  }
  return issues;
}

/**
 * Problems of a rule's `health` given its input (parsed JSON): payload
 * analysis follows one stream, so it is refused on a range or an any-port
 * input; `clock_rate` is for RTP.
 */
export function healthIssues(h: unknown, input: unknown): StreamIssue[] {
  if (!isRecord(h)) return [];
  const issues: StreamIssue[] = [];
  const payload = h.payload;
  if (typeof payload === "string" && isRecord(input)) {
    const range = typeof input.group === "string" && input.group.includes("/");
    const anyPort = input.port === "any" || input.port === 0;
    if (range || anyPort) {
      issues.push({
        path: ["health", "payload"],
        message: `analyses one stream, but the input takes ${
          range ? "a range of groups" : "every port"
        }: several streams would mix their sequence numbers; give the stream a rule of its own`,
      });
    }
  }
  if (h.clock_rate !== undefined && payload !== "rtp" && payload !== "rtp+ts") {
    issues.push({
      path: ["health", "clock_rate"],
      message: 'is the RTP timestamp clock; it needs "payload": "rtp" or "rtp+ts"',
    });
  }
  return issues;
}

/** Whether rule `r` (parsed JSON or normalized) is enabled and has `health`. */
export function isMonitored(r: unknown): boolean {
  return isRecord(r) && r.enabled !== false && isRecord(r.health);
}

/** The message for more than {@link MAX_HEALTH_RULES} rules with `health`. */
export function tooManyMonitored(n: number): string {
  return `has ${n} enabled rules with health; at most ${MAX_HEALTH_RULES} are allowed per relay`;
}

/** Whether rule `r` (parsed JSON or normalized) is enabled and asks for payload analysis. */
export function isAnalysed(r: unknown): boolean {
  return isRecord(r) && r.enabled !== false && isRecord(r.health) &&
    typeof r.health.payload === "string";
}

/** The message for more than {@link MAX_ANALYSED_RULES} analysed rules. */
export function tooManyAnalysed(n: number): string {
  return `has ${n} enabled rules with health.payload analysis; at most ${MAX_ANALYSED_RULES} ` +
    "are allowed per relay";
}

/**
 * Payload analysis on an interface read by several workers whose fanout is
 * not `hash`: one stream would be spread over them and each would see gaps.
 * `root` is the whole document (parsed JSON). Returns [rule index, message].
 */
export function fanoutIssues(root: unknown): [number, string][] {
  if (!isRecord(root) || !Array.isArray(root.rules)) return [];
  const pool = typeof root.workers === "number" ? root.workers : DEFAULT_WORKERS;
  const globalFanout = isRecord(root.rx) && typeof root.rx.fanout === "string"
    ? root.rx.fanout
    : "hash";
  const ifs = isRecord(root.interfaces) ? root.interfaces : {};
  const out: [number, string][] = [];
  root.rules.forEach((r, i) => {
    if (!isAnalysed(r) || !isRecord(r) || !isRecord(r.input)) return;
    const name = r.input.interface;
    if (typeof name !== "string") return;
    const t = isRecord(ifs[name]) ? ifs[name] as Record<string, unknown> : {};
    const own = typeof t.workers === "number" ? t.workers : undefined;
    const cpus = Array.isArray(t.cpus) ? t.cpus.length : undefined;
    const n = own ?? (cpus !== undefined ? Math.max(1, cpus) : pool);
    const fanout = typeof t.fanout === "string" ? t.fanout : globalFanout;
    if (n > 1 && fanout !== "hash") {
      out.push([
        i,
        `analyses one stream, but ${n} workers read ${name} with fanout "${fanout}", which ` +
        'spreads a stream over them (each would see gaps); use fanout "hash" (it keeps a ' +
        "stream on one worker) or one worker",
      ]);
    }
  });
  return out;
}
