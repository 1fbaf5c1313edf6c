/**
 * What the relay reports about its data-path workers: each fanout member of
 * an input interface ({@link WorkerStats}) and each worker thread
 * ({@link PoolWorkerStats}). Part of `RelayStats` (stats.ts, which collects
 * them).
 *
 * @module
 */

/** One fanout member of an input interface: its RX ring in one worker. */
export interface WorkerStats {
  /** Input interface. */
  interface: string;
  /** Index among the interface's fanout members. */
  index: number;
  /** The worker that holds the ring (index in `pool`). */
  worker: number;
  /** running, starting, pending (interface missing, or its rings closed) or error. */
  state: "running" | "starting" | "pending" | "error";
  /** Why it is not running. */
  reason?: string;
  /** Restarts so far (its worker's, and reopens of its ring after a failure). */
  restarts: number;
  /** Frames taken from this ring (all lives of its worker). */
  frames: number;
  /** Milliseconds since its worker's last loop pass (heartbeat); null when not running. */
  heartbeat_age_ms: number | null;
  /** CPU its worker is pinned to, if any. */
  cpu?: number;
}

/** One data-path worker (a thread serving any number of input interfaces). */
export interface PoolWorkerStats {
  /** Worker index. */
  index: number;
  /** running, starting, error (see reason; restarted after a backoff) or stopped. */
  state: "running" | "starting" | "error" | "stopped";
  /** Why it is not running. */
  reason?: string;
  /** Restarts so far. */
  restarts: number;
  /** The interface it serves alone, for a dedicated worker. */
  dedicated?: string;
  /** CPU it is pinned to, if any. */
  cpu?: number;
  /** Input interfaces it serves (fanout members it holds). */
  interfaces: number;
  /** RX rings open. */
  rings: number;
  /** Waits that could block (one epoll_wait over all its rings). */
  polls: number;
  /** Adaptive gather sleeps. */
  gathers: number;
  /** Its thread's nice value now (`worker_nice` while raised); null when not running. */
  nice: number | null;
  /** Times it took `worker_nice` because it fell behind (`worker_priority: adaptive`). */
  priority_raises: number;
  /** Milliseconds since its last loop pass (heartbeat); null when not running. */
  heartbeat_age_ms: number | null;
}
