/**
 * JSON Schema of rules.json, generated from the zod schema the relay
 * validates with ({@link ConfigSchema}): every leaf of that schema carries its
 * constraint as JSON Schema metadata, so ranges and enums cannot drift. This
 * module adds a description to every property (for editor hover help) and
 * refuses to emit a schema with an undocumented or untyped property.
 *
 * `cli.ts schema` prints it; `schema/rules.schema.json` is the committed copy
 * (a test checks that it matches). The JSON Schema covers the structure; the
 * semantic checks (multicast vs unicast, loops, duplicates) are `cli.ts check`'s.
 *
 * @module
 */
import { z } from "zod";
import { ConfigSchema } from "./load.ts";

/** `$id` of the schema. */
export const SCHEMA_ID = "https://mcr.invalid/schema/rules.schema.json";

/** Descriptions by property path (`*` = any array item or map key). */
export const DESCRIPTIONS: Readonly<Record<string, string>> = {
  "$schema": "URL or path of this JSON Schema, for editors; ignored by the relay.",
  "rules": "Forwarding rules: each takes one input stream and sends it to one or more outputs.",
  "rules.*": "One rule.",
  "rules.*.name":
    "Rule name (unique; used by `ctl remove`, counters and logs). Default: derived from the input.",
  "rules.*.enabled": "false keeps the rule in the file without forwarding (default true).",
  "rules.*.input": "What the rule captures.",
  "rules.*.input.interface": "Interface the stream arrives on.",
  "rules.*.input.group":
    'Destination address of the stream: a multicast group (224.0.0.0/4); a range of groups "239.1.0.0/16" (network address without host bits, /4 to /31; the most specific rule matching a datagram wins); or a unicast address — the relay\'s own on the input interface, or another host\'s seen there (mirror/SPAN port); or an IPv6 multicast group in its canonical form ("ff3e::1"; scope admin-local or wider, ff3x::/32 with a source; joined with MLD).',
  "rules.*.input.port":
    'UDP destination port of the stream, or "any" (or 0) for every port (multicast inputs only; a rule with the port given wins over one with "any").',
  "rules.*.input.joins":
    "Groups of a range input the relay joins (IGMP) on the input interface, each inside the range; without it the range relays what the network floods to the interface.",
  "rules.*.input.joins.*": "A group inside the input range to join.",
  "rules.*.input.source":
    "Only datagrams from this sender (an (S,G) rule takes precedence over a (*,G) rule); the group's address family.",
  "rules.*.input.vlan": "Match this 802.1Q VLAN id; absent = untagged frames only.",
  "rules.*.inputs":
    'Redundant inputs instead of "input": 2 to 4 paths of one stream (each one group and one port), combined as "redundancy" says.',
  "rules.*.inputs.*": "One path of the stream (the same fields as input).",
  "rules.*.inputs.*.interface": "Interface this path arrives on.",
  "rules.*.inputs.*.group": "Multicast group or unicast address of this path (one address).",
  "rules.*.inputs.*.port": "UDP destination port of this path.",
  "rules.*.inputs.*.joins": "Not for redundant inputs (one group each).",
  "rules.*.inputs.*.joins.*": "A group to join.",
  "rules.*.inputs.*.source": "Only datagrams from this sender on this path.",
  "rules.*.inputs.*.vlan": "Match this 802.1Q VLAN id on this path; absent = untagged.",
  "rules.*.redundancy":
    'How redundant inputs combine: "merge" (each datagram once, from whichever path delivers it first; ST 2022-7 style) or "failover" (one path at a time); a string is the mode, an object adds options.',
  "rules.*.redundancy.mode": '"merge" or "failover".',
  "rules.*.redundancy.max_delay_ms":
    "Path differential delay tolerated (ms, default 50): a copy arriving later than this after the first is no longer recognised as one.",
  "rules.*.redundancy.window":
    "Datagrams remembered to recognise copies (RTP sequence numbers or payload hashes; a power of two, default 8192). Must hold max_delay_ms of the stream's rate.",
  "rules.*.redundancy.reorder_ms":
    "merge: hold datagrams up to this long (ms) to restore RTP sequence order when the paths are skewed (default: no reordering). Set it above the path skew.",
  "rules.*.redundancy.failover_ms":
    "failover: silence of the active path before the next takes over (ms, default 200).",
  "rules.*.redundancy.revertive":
    "failover: go back to an earlier path once it has delivered for failover_ms (default true).",
  "rules.*.outputs": "Where each matching datagram is sent (1 to 64 outputs).",
  "rules.*.outputs.*": "One output.",
  "rules.*.outputs.*.interface": "Interface to send on.",
  "rules.*.outputs.*.group":
    'Destination: a multicast group, or a unicast address (multicast → unicast), IPv4 or IPv6 (another family than the input\'s translates: new headers, the payload unchanged); "keep" (each datagram\'s own group); or, for a range input, a range of the same length ("239.20.0.0/16": each datagram keeps its host bits).',
  "rules.*.outputs.*.port": 'UDP destination port, or "keep" (each datagram\'s own port).',
  "rules.*.outputs.*.ttl":
    'Output TTL: 1-255, or "decrement" (input TTL - 1; TTL <= 1 is dropped as ttl_expired). Default: the rule\'s, else the global one, else 1.',
  "rules.*.outputs.*.dscp": "DSCP of the output datagrams (0-63). Default: rule, global, 0.",
  "rules.*.outputs.*.hops": 'IPv6\'s name for "ttl" (the hop limit policy); give one of the two.',
  "rules.*.outputs.*.source_ip":
    "Source address, of the output group's family. Default: the output interface's address (IPv6: its global address, else its link-local one).",
  "rules.*.outputs.*.source_port": "Source port. Default: the input datagram's source port.",
  "rules.*.outputs.*.rate_limit":
    "Policing: datagrams over this limit are dropped and counted as policed (a token bucket per data-path worker; with fanout hash one stream stays on one worker).",
  "rules.*.outputs.*.rate_limit.pps": "Limit in datagrams per second.",
  "rules.*.outputs.*.rate_limit.bps": "Limit in bits per second of UDP payload.",
  "rules.*.outputs.*.rate_limit.burst_packets":
    "Bucket size in datagrams (with pps). Default: 50 ms of pps, at least 1.",
  "rules.*.outputs.*.rate_limit.burst_bytes":
    "Bucket size in bytes (with bps); a datagram longer than it never passes. Default: 50 ms of bps, at least 1500.",
  "rules.*.ttl": "Default TTL policy of this rule's outputs.",
  "rules.*.hops": 'IPv6\'s name for "ttl" (the hop limit policy); give one of the two.',
  "rules.*.dscp": "Default DSCP of this rule's outputs.",
  "rules.*.allow_link_local":
    "Allow groups in 224.0.0.0/24 (link-local control traffic) and IPv6 link- and realm-local groups (ff02::/16, ff03::/16), refused by default.",
  "rules.*.rate_limit":
    "Policing: datagrams over this limit are dropped and counted as policed (a token bucket per data-path worker; with fanout hash one stream stays on one worker).",
  "rules.*.rate_limit.pps": "Limit in datagrams per second.",
  "rules.*.rate_limit.bps": "Limit in bits per second of UDP payload.",
  "rules.*.rate_limit.burst_packets":
    "Bucket size in datagrams (with pps). Default: 50 ms of pps, at least 1.",
  "rules.*.rate_limit.burst_bytes":
    "Bucket size in bytes (with bps); a datagram longer than it never passes. Default: 50 ms of bps, at least 1500.",
  "rules.*.health":
    "Stream health: packets/s, bits/s, last-datagram age and an alarm (ok, silent, low_rate) in ctl, top, metrics and /healthz; optional RTP / MPEG-TS analysis.",
  "rules.*.health.silence_ms":
    "Alarm silent after this long without a datagram (ms). Default 1000.",
  "rules.*.health.min_pps": "Alarm low_rate under this many datagrams per second (over 1 s).",
  "rules.*.health.payload":
    'Payload analysis: "rtp" (sequence gaps, duplicates, reordering, RFC 3550 jitter), "ts" (MPEG-TS sync bytes and continuity counters per PID), "rtp+ts" (MPEG-TS in RTP). One stream per rule.',
  "rules.*.health.clock_rate": "RTP timestamp clock rate (Hz) for the jitter. Default 90000.",
  "include":
    "Files whose rules join this file's: paths or glob patterns (*, ?, [...], {a,b}) relative to this file's directory, read in order, each pattern's matches sorted by name. Each holds { \"rules\": [...] } only. A reload re-reads them.",
  "include.*": "A file name or glob pattern.",
  "runtime_rules":
    "File (relative to this one) where rules added, changed or removed with ctl are kept, so that a reload or restart keeps them. Read after include, like an included file; it need not exist yet. ctl rewrites it (atomically); rules defined in the other files are changed there.",
  "interfaces": "Per interface settings, by interface name.",
  "interfaces.*": "Settings of one interface.",
  "interfaces.*.workers":
    "Dedicated worker threads for this input interface (one fanout group) instead of the shared pool.",
  "interfaces.*.fanout": "How the kernel spreads frames over this interface's workers.",
  "interfaces.*.cpus":
    "CPUs to pin this input interface's dedicated workers to (round robin); implies dedicated workers.",
  "interfaces.*.cpus.*": "A CPU number.",
  "interfaces.*.rx_frame_count":
    "RX ring slots of each ring on this interface (default: from the interface count).",
  "interfaces.*.tx_frame_count": "TX ring slots of each TX ring on this interface.",
  "interfaces.*.rate_pps":
    "Expected peak rate in packets per second: its rings hold 50 ms of it (default: sized from the interface count).",
  "interfaces.*.promisc":
    "Capture promiscuously on this input interface (default false): a mirror/SPAN port's frames for other hosts' MAC addresses reach the relay. Held by the relay's receive sockets (as tcpdump does) and released when they close, even if the relay crashes.",
  "ttl": "Global default TTL policy (default 1, as mcrd).",
  "dscp": "Global default DSCP (default 0).",
  "workers": "Size of the worker pool that serves every input interface (default 1).",
  "cpus": "CPUs to pin the pool's workers to (worker i on cpus[i % length]).",
  "cpus.*": "A CPU number.",
  "worker_nice":
    "Nice value the data-path workers take while they fall behind (-20..19, default -10: ahead of ordinary processes), or always with worker_priority \"fixed\"; needs CAP_SYS_NICE or RLIMIT_NICE, without them the workers keep the process's priority. A value at or above the process's priority applies always.",
  "worker_priority":
    'How the workers use worker_nice: "adaptive" (default) runs them at the process\'s priority and raises it to worker_nice while a worker falls behind (half a ring or more still waiting after a batch, or kernel drops), for 1 s after the last time; "fixed" keeps worker_nice all the time.',
  "role":
    'Role the relay starts in: "active" (default) forwards; "standby" keeps its rings, IGMP memberships and tables hot, counts what it would send as standby, and sends nothing. `mcr ctl role` (keepalived\'s notify scripts) changes it at run time; a reload applies this key only when its value in the file changed.',
  "rx": "Receive ring tuning (see csrc/README.md).",
  "rx.tpacket_version":
    "AF_PACKET ring version: 2 (per-frame wakeup with adaptive coalescing, default) or 3 (block-based).",
  "rx.frame_count":
    "Frames in each receive ring (V2; default: 4096 shared by the interfaces a worker serves, at least 128 each).",
  "rx.batch_max": "Most frames handled per wakeup.",
  "rx.coalesce_us":
    "Longest wait, in microseconds, for a batch to gather when traffic is dense (0 = never wait; default 250).",
  "rx.coalesce_pps":
    "Arrival rate above which frames are gathered; the gather grows with the rate (rate / coalesce_pps squared frames; default 20000 pps).",
  "rx.filter":
    "Kernel BPF filter: only IPv4/UDP datagrams are copied to the ring (default true); false copies every frame (drops counted as not_ipv4/not_udp).",
  "rx.fanout": "PACKET_FANOUT mode when an interface has several workers (default hash).",
  "tx": "Transmit ring tuning.",
  "tx.frame_count": "Frames in each transmit ring.",
  "tx.qdisc_bypass": "PACKET_QDISC_BYPASS (faster; tcpdump on the egress interface sees nothing).",
  "control": "Control socket (`mcr ctl`, `mcr top`, ExecReload).",
  "control.socket": "Path of the control socket (default /run/mcr/control.sock).",
  "metrics": "Prometheus metrics endpoint.",
  "control.readonly_socket":
    "Path of a second, read-only control socket (mode 0660: the socket's group may list, stats, workers, check, diff and read log levels); the control socket is then the owner's alone (0600). At most 107 bytes.",
  "metrics.listen": "HOST:PORT to serve /metrics and /healthz on (default: off).",
  "metrics.health_grace_s":
    "Seconds a rule may stay pending (its input interface missing, its rings opening) before /healthz fails (default 10; faults fail it at once).",
};

/** A JSON Schema document (or a part of one) as a plain object. */
export type JsonSchema = Record<string, unknown>;
type Json = JsonSchema;

/** Walk every property schema, calling `f(path, schema)`. */
function walk(s: Json, path: string[], f: (path: string[], s: Json) => void): void {
  const props = s.properties as Record<string, Json> | undefined;
  for (const [k, v] of Object.entries(props ?? {})) {
    f([...path, k], v);
    walk(v, [...path, k], f);
  }
  for (const key of ["items", "additionalProperties"] as const) {
    const sub = s[key];
    if (sub && typeof sub === "object") {
      f([...path, "*"], sub as Json);
      walk(sub as Json, [...path, "*"], f);
    }
  }
}

/** A leaf has a type, an enum, a const or alternatives. */
function typed(s: Json): boolean {
  return ["type", "enum", "const", "anyOf", "oneOf"].some((k) => k in s);
}

/**
 * A rule property read as an object or, as a string, as the object's `key`
 * alone (the validator's `z.preprocess`, which toJSONSchema shows as the
 * object only): its schema becomes `anyOf` the string and the object.
 */
function stringOrObject(base: Json, name: string, key: string): void {
  const rules = (base.properties as Record<string, Json>).rules;
  const props = (rules.items as Json).properties as Record<string, Json>;
  const { description, ...obj } = props[name];
  const str = (obj.properties as Record<string, Json>)[key];
  props[name] = { description, anyOf: [{ enum: str.enum }, obj] };
}

/**
 * The JSON Schema (draft 2020-12) of rules.json.
 * @throws {Error} when a property has no description or no type (a new field
 *   in src/config/ needs a JSON Schema fragment and an entry in DESCRIPTIONS)
 */
export function rulesJsonSchema(): JsonSchema {
  const base = z.toJSONSchema(ConfigSchema, {
    target: "draft-2020-12",
    io: "input",
    unrepresentable: "any",
  }) as Json;
  const problems: string[] = [];
  walk(base, [], (path, s) => {
    const key = path.join(".");
    const d = DESCRIPTIONS[key];
    if (d) s.description = d;
    else problems.push(`${key}: no description in src/config/json_schema.ts DESCRIPTIONS`);
    if (!typed(s)) problems.push(`${key}: no JSON Schema type (leaf without metadata?)`);
  });
  if (problems.length) throw new Error(`rules.json schema:\n  ${problems.join("\n  ")}`);
  stringOrObject(base, "redundancy", "mode");
  const { $schema, ...rest } = base;
  return {
    $schema,
    $id: SCHEMA_ID,
    title: "mcr rules.json",
    description:
      "Configuration of mcr, the userspace multicast relay. Generated by `mcr schema` from " +
      "the validator (src/config/); structure only — `mcr check` also checks address " +
      "classes, loops and duplicates.",
    ...rest,
  };
}

/** The schema as the committed file holds it: 2-space JSON and a final newline. */
export function rulesJsonSchemaText(): string {
  return JSON.stringify(rulesJsonSchema(), null, 2) + "\n";
}
