/**
 * The relay's running account of file descriptors (fd_budget.ts does the
 * arithmetic): before the data path takes a rule set, make room for it in
 * RLIMIT_NOFILE (or refuse it), log what was done, and keep the figures
 * `stats().fds` shows. Live additions are checked against a bound instead of
 * a fresh estimate of the whole rule set (that costs a walk over 65,536
 * rules), and the figure is estimated again when it is next read.
 *
 * @module
 */
import { igmpLimits } from "../../ffi/mod.ts";
import { logger } from "../common/log.ts";
import {
  ensureFdLimit,
  estimateFds,
  FDS_HEADROOM,
  fdsAddedAtMost,
  type FdStats,
  openFds,
} from "./fd_budget.ts";
import type { DataPathOptions } from "./pool.ts";
import type { RuleSpec } from "./tables.ts";

/** The descriptor figures of one relay, kept up to date with its rule set. */
export class FdGuard {
  /** Descriptors open before the relay opened any (measured at the first check). */
  #baseline?: number;
  #fds?: FdStats;
  /**
   * At least what the rules in force need in descriptors: the last estimate
   * plus a bound for each live addition since ({@link fdsAddedAtMost}).
   */
  #bound = 0;
  /** `#fds.needed` predates live changes: estimated again when read. */
  #stale = false;

  /** @param dataPath the data path's shape (pool size, dedicated workers) */
  constructor(readonly dataPath: DataPathOptions) {}

  /** Rules were removed or replaced live: the figure is estimated again when next read. */
  changed(): void {
    this.#stale = true;
  }

  /**
   * Make room for rules added live: when the rules in force plus a bound for
   * the added ones fit under the soft limit (the usual case) nothing is
   * estimated; otherwise the whole rule set `all()` is, as for a reload.
   * @throws {FdLimitError} when even the hard limit is too low (nothing changed)
   */
  ensureAdded(add: RuleSpec[], all: () => RuleSpec[]): void {
    const bound = this.#bound + fdsAddedAtMost(add, this.dataPath);
    const soft = this.#fds?.soft_limit;
    if (this.#fds && (soft === null || bound + FDS_HEADROOM <= soft!)) {
      this.#bound = bound;
      this.#stale = true;
      return;
    }
    this.ensure(all());
  }

  /**
   * Make room in RLIMIT_NOFILE for `rules`: raise the soft limit to the hard
   * one when they need more, log what was done.
   * @throws {FdLimitError} when even the hard limit is too low (nothing changed)
   */
  ensure(rules: RuleSpec[]): void {
    const first = this.#baseline === undefined;
    this.#baseline ??= openFds();
    const need = estimateFds(rules, this.dataPath, igmpLimits(), this.#baseline);
    const r = ensureFdLimit(need);
    const log = logger("supervisor");
    const figures = {
      needed: need.total,
      soft: r.stats.soft_limit ?? "unlimited",
      hard: r.stats.hard_limit ?? "unlimited",
      igmp: need.igmp,
    };
    if (r.raised) {
      log.info(
        "raised the open-file limit (RLIMIT_NOFILE) from {from} to {soft}: the rules need " +
          "about {needed} file descriptors ({igmp} of them IGMP sockets)",
        { ...figures, from: r.stats.raised_from },
      );
    } else if (first) {
      log.info(
        "file descriptors: the rules need about {needed} ({igmp} IGMP sockets); " +
          "RLIMIT_NOFILE soft {soft}, hard {hard}",
        figures,
      );
    }
    if (r.tight && (first || r.raised)) {
      log.warn(
        "the open-file limit (hard {hard}) leaves less than {headroom} file descriptors " +
          "beyond what the rules need ({needed}): control clients may be refused; raise it " +
          "(ulimit -n, LimitNOFILE= in a systemd unit)",
        { ...figures, headroom: FDS_HEADROOM },
      );
    }
    this.#fds = r.stats;
    this.#bound = need.total;
    this.#stale = false;
  }

  /**
   * The figures for `stats().fds` (undefined before the first check), with
   * the descriptors open now; `rules()` is the rule set in force, walked
   * only when live changes made the estimate stale.
   */
  stats(rules: () => RuleSpec[]): FdStats | undefined {
    if (!this.#fds) return undefined;
    if (this.#stale) {
      const need = estimateFds(rules(), this.dataPath, igmpLimits(), this.#baseline ?? 0);
      this.#fds = { ...this.#fds, needed: need.total };
      this.#bound = Math.max(this.#bound, need.total);
      this.#stale = false;
    }
    let open: number | null = null;
    try {
      open = openFds();
    } catch { /* libmcr not loaded: keep the last figure */ }
    return { ...this.#fds, open: open ?? this.#fds.open };
  }
}
