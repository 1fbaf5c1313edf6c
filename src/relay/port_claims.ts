/**
 * UDP port claims of unicast inputs. A datagram sent to one of the host's
 * own addresses reaches the relay's RX ring and also the kernel's UDP stack,
 * which answers the sender with ICMP port unreachable when no socket holds
 * the port. For each distinct (input interface, address, port) of the
 * unicast inputs the relay holds a claim (ffi `UdpClaim`, csrc/udpclaim.c):
 * a socket bound there whose filter drops every datagram unqueued, so the
 * kernel answers nothing. Rules that share the address and port (another
 * source or VLAN) share the claim; it is released with the last of them.
 *
 * A claim is in one of four states: `held`; `not_local` — the address is not
 * the host's (another host's, seen on a mirror port: the kernel does not
 * deliver it to its UDP stack, nothing to claim); `pending` — the input
 * interface does not exist; `failed` — the kernel refused (another program
 * holds the port, a privileged port without CAP_NET_BIND_SERVICE, out of
 * descriptors). Claims not held are tried again at every rule change, link
 * change (an interface appears, comes up, is re-created) and IPv4 address
 * change; failed ones also every {@link CLAIM_RETRY_MS}. A failed claim is
 * its rules' error (`errors`), with the reason; the rules still relay.
 *
 * @module
 */
import { Errno, McrError, UdpClaim } from "../../ffi/mod.ts";
import { formatIPv4 } from "../common/net.ts";
import { logger } from "../common/log.ts";
import type { Links } from "./links.ts";
import { isUnicastInput, type RuleSpec } from "./tables.ts";

/** What the claims need of one kernel claim (ffi `UdpClaim`; a model in tests). */
export interface ClaimSocket {
  /** Release the port. */
  close(): void;
}

/** Where a claim stands (see module doc). */
export type ClaimState = "held" | "not_local" | "pending" | "failed";

/** How often failed claims are tried again (ms). */
export const CLAIM_RETRY_MS = 5000;
/** Refused claims listed in {@link ClaimStats.failures} at most (all are counted). */
export const MAX_LISTED_CLAIM_FAILURES = 64;

/** The relay's UDP port claims (in `stats().claims`). */
export interface ClaimStats {
  /** Claims the unicast inputs need: distinct (input interface, address, port). */
  claims: number;
  /** Of those, held. */
  held: number;
  /** Of those, not needed: the address is not the host's (a mirror port's). */
  not_local: number;
  /** Of those, waiting for their input interface to appear. */
  pending: number;
  /** Of those, refused by the kernel (see `failures`). */
  failed: number;
  /** The first refused claims, with the reason. */
  failures: { interface: string; address: string; port: number; reason: string }[];
}

/** Options of {@link PortClaims} (tests put a model of the kernel here). */
export interface PortClaimsOptions {
  /** Opens one claim (default: ffi `UdpClaim`); throws McrError. */
  open?: (ifindex: number, addr: number, port: number) => ClaimSocket;
  /** Retry interval of failed claims (default {@link CLAIM_RETRY_MS}). */
  retryMs?: number;
  /** Called when rule errors changed outside a rule change (a retry, a link or address change). */
  changed?: () => void;
}

/** One claim and the rules that need it. */
interface Claim {
  readonly ifname: string;
  readonly addr: number;
  readonly port: number;
  /** Ids of the rules that need it. */
  readonly rules: Set<string>;
  /** The kernel socket, while held. */
  sock: ClaimSocket | null;
  /** The interface index it is held on. */
  ifindex: number;
  state: ClaimState;
  /** Why it failed. */
  reason?: string;
}

function claimKey(ifname: string, addr: number, port: number): string {
  return `${ifname}|${addr}|${port}`;
}

/** The relay's claims (see module doc). */
export class PortClaims {
  readonly #log = logger("supervisor");
  readonly #open: (ifindex: number, addr: number, port: number) => ClaimSocket;
  readonly #retryMs: number;
  readonly #changed: () => void;
  /** Claims by {@link claimKey}. */
  readonly #claims = new Map<string, Claim>();
  /** Claims of each input interface. */
  readonly #byIf = new Map<string, Set<Claim>>();
  /** The claim of each rule. */
  readonly #byRule = new Map<string, Claim>();
  /** Claims not held: tried again at every change. */
  readonly #unheld = new Set<Claim>();
  /** Rules whose claim failed: rule id → reason. */
  readonly #errors = new Map<string, string>();
  /** Rules whose error changed since {@link takeChanged}: rule id → input interface. */
  readonly #dirty = new Map<string, string>();
  #timer?: ReturnType<typeof setTimeout>;
  #closed = false;

  /**
   * @param links where interfaces are looked up
   * @param opts claim source, retry interval, change callback
   */
  constructor(readonly links: Links, opts: PortClaimsOptions = {}) {
    this.#open = opts.open ?? ((i, a, p) => new UdpClaim(i, a, p));
    this.#retryMs = opts.retryMs ?? CLAIM_RETRY_MS;
    this.#changed = opts.changed ?? (() => {});
  }

  /** Rules whose claim failed: rule id → reason (the rule's error; it still relays). */
  get errors(): ReadonlyMap<string, string> {
    return this.#errors;
  }

  /** Rules whose error changed since the last call, as [rule id, input interface]. */
  takeChanged(): [string, string][] {
    const out = [...this.#dirty];
    this.#dirty.clear();
    return out;
  }

  /** Hold what `rules` need, release what they no longer need. */
  sync(rules: readonly RuleSpec[]): void {
    const keep = new Set<string>();
    for (const r of rules) if (isUnicastInput(r.input)) keep.add(r.id);
    for (const id of [...this.#byRule.keys()]) if (!keep.has(id)) this.#release(id);
    for (const r of rules) if (keep.has(r.id) && !this.#byRule.has(r.id)) this.#attach(r);
    this.#retry(this.#unheld);
  }

  /**
   * Hold what rules being added need, release what rules being removed no
   * longer need (another rule may share the claim): the same result as
   * {@link sync} with the changed rule set, in time proportional to the change.
   */
  change(add: readonly RuleSpec[], remove: readonly RuleSpec[]): void {
    for (const r of remove) this.#release(r.id);
    for (const r of add) {
      if (isUnicastInput(r.input) && !this.#byRule.has(r.id)) this.#attach(r);
    }
    this.#retry(this.#unheld);
  }

  /**
   * Interface `ifname` appeared, changed or went: claims held on an index it
   * no longer has are taken again, and every claim not held is tried again
   * (an interface that comes up brings its addresses back).
   */
  linkChanged(ifname: string): void {
    const ifindex = this.links.get(ifname)?.ifindex;
    const again = new Set(this.#unheld);
    for (const c of this.#byIf.get(ifname) ?? []) {
      if (c.sock && c.ifindex !== ifindex) again.add(c);
    }
    if (again.size > 0 && this.#retry(again)) this.#changed();
  }

  /** An IPv4 address was added or removed somewhere: try the claims not held again. */
  addressesChanged(): void {
    if (this.#unheld.size > 0 && this.#retry(this.#unheld)) this.#changed();
  }

  /** Release every claim. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const c of this.#claims.values()) {
      c.sock?.close();
      c.sock = null;
    }
    this.#claims.clear();
    this.#byIf.clear();
    this.#byRule.clear();
    this.#unheld.clear();
    this.#errors.clear();
    this.#dirty.clear();
  }

  /** Counts and the reasons of refused claims. */
  stats(): ClaimStats {
    const s: ClaimStats = { claims: 0, held: 0, not_local: 0, pending: 0, failed: 0, failures: [] };
    for (const c of this.#claims.values()) {
      s.claims++;
      s[c.state]++;
      if (c.state === "failed" && s.failures.length < MAX_LISTED_CLAIM_FAILURES) {
        s.failures.push({
          interface: c.ifname,
          address: formatIPv4(c.addr),
          port: c.port,
          reason: c.reason ?? "not held",
        });
      }
    }
    return s;
  }

  /** Rule `r` needs its claim (created, not tried yet, when missing). */
  #attach(r: RuleSpec): void {
    const { interface: ifname, group: addr, port } = r.input;
    const key = claimKey(ifname, addr, port);
    let c = this.#claims.get(key);
    if (!c) {
      c = { ifname, addr, port, rules: new Set(), sock: null, ifindex: 0, state: "pending" };
      this.#claims.set(key, c);
      let set = this.#byIf.get(ifname);
      if (!set) this.#byIf.set(ifname, set = new Set());
      set.add(c);
      this.#unheld.add(c);
    }
    c.rules.add(r.id);
    this.#byRule.set(r.id, c);
    if (c.state === "failed") this.#setError(r.id, c, c.reason);
  }

  /** Rule `id` no longer needs its claim: released with its last rule. */
  #release(id: string): void {
    const c = this.#byRule.get(id);
    if (!c) return;
    this.#byRule.delete(id);
    c.rules.delete(id);
    this.#setError(id, c, undefined);
    if (c.rules.size > 0) return;
    c.sock?.close();
    c.sock = null;
    this.#claims.delete(claimKey(c.ifname, c.addr, c.port));
    const set = this.#byIf.get(c.ifname)!;
    set.delete(c);
    if (set.size === 0) this.#byIf.delete(c.ifname);
    this.#unheld.delete(c);
  }

  #setError(id: string, c: Claim, reason: string | undefined): void {
    if (this.#errors.get(id) === reason) return;
    if (reason === undefined) this.#errors.delete(id);
    else this.#errors.set(id, reason);
    this.#dirty.set(id, c.ifname);
  }

  /** Try `claims` (again); true when a rule's error changed. */
  #retry(claims: Iterable<Claim>): boolean {
    let changed = false;
    for (const c of [...claims]) changed = this.#try(c) || changed;
    this.#schedule();
    return changed;
  }

  /** Take claim `c` on its interface's current index; true when its rules' error changed. */
  #try(c: Claim): boolean {
    const link = this.links.get(c.ifname);
    if (c.sock && c.ifindex === link?.ifindex) return false;
    c.sock?.close();
    c.sock = null;
    if (!link) return this.#set(c, "pending");
    try {
      c.sock = this.#open(link.ifindex, c.addr, c.port);
      c.ifindex = link.ifindex;
      return this.#set(c, "held");
    } catch (e) {
      if (e instanceof McrError && e.errno === Errno.EADDRNOTAVAIL) {
        return this.#set(c, "not_local");
      }
      return this.#set(c, "failed", this.#refusal(c, e));
    }
  }

  /** Put `c` in `state`; true when its rules' error changed. */
  #set(c: Claim, state: ClaimState, reason?: string): boolean {
    const was = c.reason;
    const where = { address: `${formatIPv4(c.addr)}:${c.port}`, interface: c.ifname };
    if (state === "failed" && reason !== was) {
      this.#log.warn("{interface}: UDP port claim of {address} refused: {error}", {
        ...where,
        error: reason,
      });
    } else if (state === "held" && c.state === "failed") {
      this.#log.info("{interface}: UDP port claim of {address} held now", where);
    }
    c.state = state;
    c.reason = reason;
    if (state === "held") this.#unheld.delete(c);
    else this.#unheld.add(c);
    if (reason === was) return false;
    for (const id of c.rules) this.#setError(id, c, reason);
    return true;
  }

  /** Why the kernel refused claim `c`, and what it means for the rule. */
  #refusal(c: Claim, e: unknown): string {
    const errno = e instanceof McrError ? e.errno : 0;
    const code = e instanceof McrError ? e.code : "";
    const why = errno === Errno.EADDRINUSE
      ? "another program has a socket bound to that port (EADDRINUSE) and receives these " +
        "datagrams too"
      : errno === Errno.EACCES || errno === Errno.EPERM
      ? `a port below net.ipv4.ip_unprivileged_port_start needs CAP_NET_BIND_SERVICE (${code})`
      : errno === Errno.EMFILE || errno === Errno.ENFILE
      ? `out of file descriptors (${code}): raise the open-file limit (ulimit -n; LimitNOFILE=)`
      : (e as Error).message;
    return `cannot claim UDP port ${formatIPv4(c.addr)}:${c.port} on ${c.ifname} (a socket ` +
      "that keeps the kernel from answering the sender ICMP port unreachable): " + why +
      `; the rule still relays; tried again every ${this.#retryMs / 1000} s`;
  }

  /** Keep a retry timer while a claim is failed. */
  #schedule(): void {
    if (this.#closed || this.#timer !== undefined) return;
    let failed = false;
    for (const c of this.#unheld) {
      if (c.state === "failed") {
        failed = true;
        break;
      }
    }
    if (!failed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const again = [...this.#unheld].filter((c) => c.state === "failed");
      if (this.#retry(again)) this.#changed();
    }, this.#retryMs);
    Deno.unrefTimer(this.#timer);
  }
}
