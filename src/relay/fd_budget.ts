/**
 * The relay's file-descriptor budget. Every ring, waker, socket template,
 * input lock, IGMP socket and UDP port claim (unicast inputs,
 * port_claims.ts) is a descriptor, and RLIMIT_NOFILE caps them: at
 * the systemd default (soft 1024) a large rule set would fail one open at a
 * time. Before the data path takes a rule set, {@link estimateFds} sizes what
 * it needs and {@link ensureFdLimit} raises the soft limit to the hard one
 * when the need (with headroom for control clients) is above it, or refuses
 * the rule set with an error naming the limit when even the hard limit is
 * too low.
 *
 * The estimate follows the data path's shape (src/relay/pool.ts): a pool of
 * workers serves every input interface without workers of its own, and an
 * interface with `workers`/`cpus` has dedicated ones. Each worker has a
 * waker, an epoll set, the Deno runtime's own descriptors, one RX ring per
 * input interface it serves, one TX ring per output interface of those
 * inputs' rules and one socket per unicast output; update
 * {@link dataPathFds} with that shape.
 *
 * @module
 */
import { fdLimits, type IgmpLimits, setSoftFdLimit } from "../../ffi/mod.ts";
import { isGroupDest } from "../common/net6.ts";
import { DEFAULT_MAX_MEMBERSHIPS, DEFAULT_MAX_MSF } from "./igmp_sockets.ts";
import { isUnicastInput, type RuleSpec } from "./tables.ts";
import { type DataPathOptions, dedicatedWorkers, poolSize } from "./pool.ts";

/**
 * Descriptors of one data-path worker besides its rings: its waker (eventfd)
 * and what the Deno runtime opens for a Worker thread (measured with Deno
 * 2.9.6: an eventfd, two epoll instances, a pipe, a Unix socket and
 * /dev/null — 7), rounded up.
 */
export const FDS_PER_WORKER = 8;
/** A worker's RX ring set (its epoll instance). */
export const FDS_PER_RX_SET = 1;
/** The link monitor (netlink socket) and its waker. */
export const FDS_LINK_MONITOR = 2;
/**
 * Headroom wanted above the need, not required: the control socket's clients
 * (256 at most, MAX_CLIENTS in src/control/protocol.ts), the metrics
 * endpoint's connections, short-lived sockets (interface lookups, sd_notify).
 */
export const FDS_HEADROOM = 320;
/** Descriptors assumed open before the relay opens anything, when /proc/self/fd is unreadable. */
export const FDS_BASELINE_DEFAULT = 64;

/** What a rule set needs, by part. */
export interface FdNeed {
  /** Open before the relay opened anything (the runtime, log files, stdio). */
  baseline: number;
  /** Data-path workers: rings, wakers, socket templates, the runtime's per worker. */
  dataPath: number;
  /** Input locks (one per input interface) and the link monitor. */
  control: number;
  /** IGMP sockets (memberships packed by the kernel's per-socket limits). */
  igmp: number;
  /** MLD sockets of the IPv6 input groups ({@link MLD_PER_SOCKET} memberships each, estimated). */
  mld: number;
  /** UDP port claims: one per distinct unicast input (interface, address, port). */
  claims: number;
  /** baseline + dataPath + control + igmp + mld + claims: less than this and the rule set cannot run. */
  total: number;
}

/** The descriptor figures the relay reports (`stats().fds`). */
export interface FdStats {
  /** Descriptors open now (null: unknown). */
  open: number | null;
  /** RLIMIT_NOFILE soft limit (null: unlimited). */
  soft_limit: number | null;
  /** RLIMIT_NOFILE hard limit (null: unlimited). */
  hard_limit: number | null;
  /** What the rule set needs, estimated (see {@link FdNeed}). */
  needed: number;
  /** The soft limit before the relay raised it, when it did. */
  raised_from?: number;
}

/** The hard RLIMIT_NOFILE is below what the rule set needs. */
export class FdLimitError extends Error {
  /**
   * @param need what the rule set needs
   * @param hard the hard limit
   */
  constructor(readonly need: FdNeed, readonly hard: number) {
    super(
      `the configuration needs about ${need.total} file descriptors (${describe(need)}), more ` +
        `than the open-file limit allows (RLIMIT_NOFILE hard limit ${hard}): raise it to at ` +
        `least ${need.total + FDS_HEADROOM} — \`ulimit -n ${need.total + FDS_HEADROOM}\` (as ` +
        `root) before starting mcr, or LimitNOFILE=${need.total + FDS_HEADROOM} in its systemd ` +
        "unit — or raise net.ipv4.igmp_max_memberships (fewer IGMP sockets)",
    );
    this.name = "FdLimitError";
  }
}

function describe(n: FdNeed): string {
  return `${n.baseline} open at start, ${n.dataPath} for data-path workers, ` +
    `${n.control} for input locks and the link monitor, ${n.igmp} IGMP sockets` +
    (n.mld ? `, ${n.mld} MLD sockets` : "") +
    (n.claims ? `, ${n.claims} UDP port claims of unicast inputs` : "");
}

/** Descriptors of the data-path workers (rings, wakers, socket templates, runtime). */
export function dataPathFds(rules: readonly RuleSpec[], opts: DataPathOptions): number {
  const inputs = new Map<string, { outIfs: Set<string>; unicast: number }>();
  for (const r of rules) {
    let i = inputs.get(r.input.interface);
    if (!i) inputs.set(r.input.interface, i = { outIfs: new Set(), unicast: 0 });
    for (const o of r.outputs) {
      i.outIfs.add(o.interface);
      if (!isGroupDest(o)) i.unicast++;
    }
  }
  let n = 0;
  // the shared pool: every worker serves every shared input
  const shared = { inputs: 0, outIfs: new Set<string>(), unicast: 0 };
  for (const [name, i] of inputs) {
    const workers = dedicatedWorkers(opts, name);
    if (workers > 0) {
      n += workers * (FDS_PER_WORKER + FDS_PER_RX_SET + 1 + i.outIfs.size + i.unicast);
      continue;
    }
    shared.inputs++;
    for (const x of i.outIfs) shared.outIfs.add(x);
    shared.unicast += i.unicast;
  }
  n += poolSize(opts) *
    (FDS_PER_WORKER + FDS_PER_RX_SET + shared.inputs + shared.outIfs.size + shared.unicast);
  return n;
}

/**
 * IGMP sockets the rule set's memberships need: groups per socket up to
 * `igmp_max_memberships`, sources of a group per socket up to
 * `igmp_max_msf`, and no two entries of one (group, interface) on one socket
 * (so a group with more sources than that takes one socket per share).
 */
export function igmpSocketsNeeded(rules: readonly RuleSpec[], limits: IgmpLimits): number {
  const perGroup = Math.max(1, limits.maxMemberships ?? DEFAULT_MAX_MEMBERSHIPS);
  const perSource = Math.max(1, limits.maxMsf ?? DEFAULT_MAX_MSF);
  // per input interface: any-source groups, and the sources of each source-specific group
  const ifs = new Map<string, { any: Set<number>; ssm: Map<number, Set<number>> }>();
  for (const r of rules) {
    if (r.input.joins.length === 0) continue; // a unicast input, a range without joins
    let i = ifs.get(r.input.interface);
    if (!i) ifs.set(r.input.interface, i = { any: new Set(), ssm: new Map() });
    for (const g of r.input.joins) {
      if (r.input.source === 0) i.any.add(g);
      else {
        const s = i.ssm.get(g);
        if (s) s.add(r.input.source);
        else i.ssm.set(g, new Set([r.input.source]));
      }
    }
  }
  let entries = 0, widest = 0;
  for (const i of ifs.values()) {
    entries += i.any.size;
    if (i.any.size > 0) widest = Math.max(widest, 1);
    for (const [g, sources] of i.ssm) {
      const n = Math.ceil(sources.size / perSource);
      entries += n;
      widest = Math.max(widest, n + (i.any.has(g) ? 1 : 0));
    }
  }
  return entries === 0 ? 0 : Math.max(Math.ceil(entries / perGroup), widest);
}

/**
 * MLD memberships one socket holds, as the estimate of {@link mldSocketsNeeded}: a socket holds
 * memberships until its option memory (net.core.optmem_max) is full — 2,340 any-source groups at
 * Debian 12's 131,072 bytes (measured); source-specific ones take more — and the relay then opens
 * another (relay/mld.ts).
 */
export const MLD_PER_SOCKET = 1000;

/** MLD sockets the rule set's IPv6 input groups need (distinct interface, group, source). */
export function mldSocketsNeeded(rules: readonly RuleSpec[]): number {
  const keys = new Set<string>();
  for (const r of rules) {
    const { interface: ifname, group6, source6 } = r.input;
    if (group6) keys.add(`${ifname}|${group6}|${source6 ?? ""}`);
  }
  return Math.ceil(keys.size / MLD_PER_SOCKET);
}

/**
 * UDP port claims the rule set's unicast inputs may hold: one per distinct
 * (input interface, address, port); an address that is not the relay's own
 * holds none, but which are is known only when the claim is tried.
 */
export function claimsNeeded(rules: readonly RuleSpec[]): number {
  const keys = new Set<string>();
  for (const r of rules) {
    const { interface: ifname, group, port } = r.input;
    if (isUnicastInput(r.input)) keys.add(`${ifname}|${group}|${port}`);
  }
  return keys.size;
}

/**
 * What `rules` need in descriptors.
 * @param baseline descriptors open before the relay opened anything
 */
export function estimateFds(
  rules: readonly RuleSpec[],
  opts: DataPathOptions,
  igmp: IgmpLimits,
  baseline: number,
): FdNeed {
  const dataPath = dataPathFds(rules, opts);
  const control = new Set(rules.map((r) => r.input.interface)).size + FDS_LINK_MONITOR;
  const sockets = igmpSocketsNeeded(rules, igmp);
  const claims = claimsNeeded(rules);
  const mld = mldSocketsNeeded(rules);
  return {
    baseline,
    dataPath,
    control,
    igmp: sockets,
    mld,
    claims,
    total: baseline + dataPath + control + sockets + mld + claims,
  };
}

/** Descriptors open now, or {@link FDS_BASELINE_DEFAULT} when they cannot be counted. */
export function openFds(): number {
  return fdLimits().open ?? FDS_BASELINE_DEFAULT;
}

/** What {@link ensureFdLimit} did. */
export interface FdLimitResult {
  /** The figures to report. */
  stats: FdStats;
  /** The soft limit was raised (from `stats.raised_from` to `stats.soft_limit`). */
  raised: boolean;
  /** The hard limit is below the need plus {@link FDS_HEADROOM}: control clients may be refused. */
  tight: boolean;
}

/**
 * Make room for `need`: raise the soft RLIMIT_NOFILE to the hard limit when
 * the need plus {@link FDS_HEADROOM} is above it.
 * @throws {FdLimitError} when the hard limit is below the need
 */
export function ensureFdLimit(need: FdNeed): FdLimitResult {
  const l = fdLimits();
  const want = need.total + FDS_HEADROOM;
  if (l.hard !== null && l.hard < need.total) throw new FdLimitError(need, l.hard);
  let raised = false;
  const before = l.soft;
  if (l.soft !== null && l.soft < want && l.soft !== l.hard) {
    setSoftFdLimit(l.hard);
    raised = true;
  }
  const now = raised ? fdLimits() : l;
  return {
    stats: {
      open: now.open,
      soft_limit: now.soft,
      hard_limit: now.hard,
      needed: need.total,
      ...(raised && before !== null ? { raised_from: before } : {}),
    },
    raised,
    tight: now.hard !== null && now.hard < want,
  };
}

/**
 * At most how many descriptors `rules` add to any rule set they join: per
 * rule an IGMP socket (multicast input) or a UDP port claim (unicast input)
 * and an input lock, and in each worker that may serve
 * its input an RX ring, a TX ring per output and a socket per unicast output.
 * A live change checks this bound against the limit instead of estimating
 * the whole rule set again (see {@link estimateFds}).
 */
export function fdsAddedAtMost(rules: readonly RuleSpec[], opts: DataPathOptions): number {
  let n = 0;
  for (const r of rules) {
    const workers = dedicatedWorkers(opts, r.input.interface) || poolSize(opts);
    n += 2 + workers * (1 + 2 * r.outputs.length);
  }
  return n;
}
