/**
 * Normalization: a valid rules.json (as written) becomes a `Config` —
 * defaults applied, TTL and DSCP resolved per output, addresses as numbers,
 * rule ids computed.
 *
 * @module
 */
import { isMulticast, parseIPv4 } from "../common/net.ts";
import { parseIPv6 } from "../common/net6.ts";
import { inputsId } from "./ids.ts";
import {
  DEFAULT_DSCP,
  DEFAULT_TTL,
  DEFAULT_WORKER_NICE,
  DEFAULT_WORKER_PRIORITY,
  DEFAULT_WORKERS,
} from "./limits.ts";
import type { RawConfig, RawInput, RawRule, TtlPolicy } from "./schema.ts";
import type { Config, InputConfig, OutputConfig, RuleConfig, RxTuning, TxTuning } from "./types.ts";
import { canonicalPort, inputMatch, isRange, outputDest } from "./ranges.ts";
import { normalizeHealth, normalizeRateLimit } from "./stream_options.ts";
import { normalizeRedundancy } from "./redundancy.ts";

/** Defaults a rule inherits (the config's, or the built-in ones). */
export interface Defaults {
  /** TTL policy. */
  ttl: TtlPolicy;
  /** DSCP. */
  dscp: number;
}

/** One input, normalized. */
function normalizeInput(i: RawInput): InputConfig {
  const match = inputMatch(i);
  const v6 = match.family === 6;
  const joinAddrs = v6
    ? []
    : isRange(match)
    ? (i.joins ?? []).map((g) => parseIPv4(g)!)
    : isMulticast(match.addr)
    ? [match.addr]
    : [];
  const input: InputConfig = {
    interface: i.interface,
    group: i.group,
    port: canonicalPort(i.port),
    family: match.family,
    groupAddr: match.addr,
    prefixLen: match.len,
    portNumber: match.port,
    joinAddrs,
    sourceAddr: i.source === undefined || v6 ? 0 : parseIPv4(i.source)!,
    vlanId: i.vlan === undefined || i.vlan === 0 ? -1 : i.vlan,
  };
  if (v6) input.group6 = match.addr6;
  if (v6 && i.source !== undefined) input.source6 = parseIPv6(i.source)!;
  if (i.source !== undefined) input.source = i.source;
  if (i.vlan !== undefined) input.vlan = i.vlan;
  if (i.joins !== undefined) input.joins = [...i.joins];
  return input;
}

/** One rule, normalized (its id computed, every default resolved). */
export function normalizeRule(rule: RawRule, d: Defaults): RuleConfig {
  const raw = rule.inputs ?? [rule.input!];
  const id = inputsId(raw);
  const rttl = rule.ttl ?? rule.hops ?? d.ttl;
  const rdscp = rule.dscp ?? d.dscp;
  const inputs = raw.map(normalizeInput);
  const input = inputs[0];
  // outputs that keep the group or port take the first input's (redundancy.ts)
  const match = inputMatch(raw[0]);
  const outputs = rule.outputs.map((o): OutputConfig => {
    const oDscp = o.dscp ?? rdscp;
    const dest = outputDest(match, o);
    if ("problem" in dest) throw new Error(`normalizeRule: unchecked output: ${dest.problem}`);
    const out: OutputConfig = {
      interface: o.interface,
      group: o.group,
      port: o.port,
      family: dest.family,
      ttl: o.ttl ?? o.hops ?? rttl,
      dscp: oDscp,
      tos: oDscp << 2,
      groupAddr: dest.addr,
      hostBits: dest.hostBits,
      portNumber: dest.port,
      sourceAddr: o.source_ip === undefined || dest.family === 6 ? 0 : parseIPv4(o.source_ip)!,
    };
    if (dest.family === 6) out.group6 = dest.addr6;
    if (dest.family === 6 && o.source_ip !== undefined) out.source6 = parseIPv6(o.source_ip)!;
    if (o.source_ip !== undefined) out.source_ip = o.source_ip;
    if (o.source_port !== undefined) out.source_port = o.source_port;
    if (o.rate_limit !== undefined) out.rate_limit = normalizeRateLimit(o.rate_limit);
    return out;
  });
  const out: RuleConfig = {
    id,
    name: rule.name ?? id,
    enabled: rule.enabled ?? true,
    input,
    outputs,
    ttl: rttl,
    dscp: rdscp,
    allow_link_local: rule.allow_link_local ?? false,
  };
  if (rule.inputs !== undefined) {
    out.inputs = inputs;
    out.redundancy = normalizeRedundancy(rule.redundancy ?? { mode: "merge" });
  }
  if (rule.rate_limit !== undefined) out.rate_limit = normalizeRateLimit(rule.rate_limit);
  if (rule.health !== undefined) out.health = normalizeHealth(rule.health);
  return out;
}

/** A structurally and semantically valid rules.json, normalized. */
export function normalize(raw: RawConfig): Config {
  const d: Defaults = { ttl: raw.ttl ?? DEFAULT_TTL, dscp: raw.dscp ?? DEFAULT_DSCP };
  const rx: RxTuning = { filter: raw.rx?.filter ?? true, fanout: raw.rx?.fanout ?? "hash" };
  if (raw.rx?.tpacket_version !== undefined) rx.tpacket_version = raw.rx.tpacket_version;
  if (raw.rx?.frame_count !== undefined) rx.frame_count = raw.rx.frame_count;
  if (raw.rx?.batch_max !== undefined) rx.batch_max = raw.rx.batch_max;
  if (raw.rx?.coalesce_us !== undefined) rx.coalesce_us = raw.rx.coalesce_us;
  if (raw.rx?.coalesce_pps !== undefined) rx.coalesce_pps = raw.rx.coalesce_pps;
  const tx: TxTuning = {};
  if (raw.tx?.frame_count !== undefined) tx.frame_count = raw.tx.frame_count;
  if (raw.tx?.qdisc_bypass !== undefined) tx.qdisc_bypass = raw.tx.qdisc_bypass;
  const config: Config = {
    rules: raw.rules.map((r) => normalizeRule(r, d)),
    ttl: d.ttl,
    dscp: d.dscp,
    workers: raw.workers ?? DEFAULT_WORKERS,
    worker_nice: raw.worker_nice ?? DEFAULT_WORKER_NICE,
    worker_priority: raw.worker_priority ?? DEFAULT_WORKER_PRIORITY,
    role: raw.role ?? "active",
    interfaces: structuredClone(raw.interfaces ?? {}),
    rx,
    tx,
  };
  if (raw.cpus) config.cpus = [...raw.cpus];
  if (raw.control) config.control = { ...raw.control };
  if (raw.metrics) {
    config.metrics = { listen: raw.metrics.listen };
    if (raw.metrics.health_grace_s !== undefined) {
      config.metrics.health_grace_s = raw.metrics.health_grace_s;
    }
  }
  return config;
}
