/**
 * Wires the control plane into a running daemon: the control socket, the
 * optional metrics endpoint, the rate sampler and SIGHUP (= `reload`).
 * `cli.ts` calls {@link startControlPlane} once the configuration is loaded.
 *
 * @module
 */
import { ConfigError, setQuoteValues } from "../config/mod.ts";
import { logger } from "../common/log.ts";
import type { Relay } from "../relay/relay.ts";
import { type ControlContext, logReload } from "./commands.ts";
import { DEFAULT_CONTROL_SOCKET } from "./protocol.ts";
import { RateTracker } from "./rates.ts";
import { DEFAULT_HEALTH_GRACE_S, HealthTracker } from "./health.ts";
import { ControlServer, ControlSetupError } from "./server.ts";

/** Options of {@link startControlPlane}. */
export interface ControlPlaneOptions {
  /** Control socket path (flag, else config `control.socket`, else the default); null disables it. */
  socket: string | null;
  /**
   * Read-only control socket path (config `control.readonly_socket`): status
   * commands for the socket's group (mode 0660), while the control socket is
   * the owner's alone (0600).
   */
  readonlySocket?: string;
  /** Metrics listen address "HOST:PORT" (flag, else config `metrics.listen`); null disables it. */
  metrics: string | null;
  /**
   * True when the socket path is the built-in default (neither flag nor
   * config): then a missing permission (Deno flag or file system) only
   * disables the control socket with a warning instead of stopping the
   * daemon. An unsafe directory or another daemon on the socket stay fatal.
   */
  socketIsDefault?: boolean;
}

/** The running control plane. */
export interface ControlPlane {
  /** Shared by the socket and the metrics endpoint. */
  ctx: ControlContext;
  /** The control server, when enabled. */
  control?: ControlServer;
  /** Close everything (socket file removed). */
  close(): Promise<void>;
}

/** The control plane could not start (exit 3 with this message). */
export class ControlPlaneError extends Error {}

/** Resolve the socket path and metrics address from flags and the configuration. */
export function controlOptions(
  flags: { "control-socket"?: string; metrics?: string; "no-control"?: boolean },
  config: { control?: { socket?: string; readonly_socket?: string }; metrics?: { listen: string } },
): ControlPlaneOptions {
  const chosen = flags["control-socket"] ?? config.control?.socket;
  return {
    socket: flags["no-control"] ? null : chosen ?? DEFAULT_CONTROL_SOCKET,
    ...(config.control?.readonly_socket && !flags["no-control"]
      ? { readonlySocket: config.control.readonly_socket }
      : {}),
    metrics: flags.metrics ?? config.metrics?.listen ?? null,
    socketIsDefault: !flags["no-control"] && chosen === undefined,
  };
}

/**
 * Start the control socket, metrics and SIGHUP handling for `relay`.
 * @throws {ControlPlaneError} saying why (unsafe directory, another daemon, permissions)
 */
export async function startControlPlane(
  relay: Relay,
  opts: ControlPlaneOptions,
): Promise<ControlPlane> {
  const log = logger("control");
  // From now on configurations come from control clients and files they name: errors in
  // replies and in the log say which field is wrong and why, never what a file holds.
  setQuoteValues(false);
  const rates = new RateTracker(() => relay.counters());
  const tracker = new HealthTracker(
    1000 * (relay.config.metrics?.health_grace_s ?? DEFAULT_HEALTH_GRACE_S),
  );
  const unlisten = relay.on((ev) => tracker.observe(ev));
  const ctx: ControlContext = { relay, rates, startedAt: performance.now(), health: tracker };
  let control: ControlServer | undefined;
  let readonly: ControlServer | undefined;
  let metrics: { close(): Promise<void> } | undefined;
  const fail = async (what: string, e: unknown): Promise<never> => {
    rates.stop();
    unlisten();
    await control?.close();
    await readonly?.close();
    const msg = e instanceof Deno.errors.NotCapable
      ? `${(e as Error).message} (${what} needs ${
        what === "metrics"
          ? "--allow-net=HOST:PORT"
          : "--allow-read and --allow-write for the socket path"
      })`
      : (e as Error).message;
    throw new ControlPlaneError(`${what}: ${msg}`);
  };
  if (opts.socket !== null) {
    try {
      control = await ControlServer.start(opts.socket, ctx, {
        mode: opts.readonlySocket ? 0o600 : 0o660,
      });
    } catch (e) {
      const permission = e instanceof Deno.errors.NotCapable ||
        e instanceof Deno.errors.PermissionDenied;
      if (opts.socketIsDefault && permission && !(e instanceof ControlSetupError)) {
        log.warn(
          "control socket {path} disabled: {error} (give --allow-read, --allow-write and " +
            "--allow-net=unix:PATH, choose --control-socket, or pass --no-control)",
          { path: opts.socket, error: (e as Error).message },
        );
      } else {
        await fail("control socket", e);
      }
    }
  }
  if (opts.readonlySocket) {
    try {
      readonly = await ControlServer.start(opts.readonlySocket, ctx, { readOnly: true });
    } catch (e) {
      await fail("read-only control socket", e);
    }
  }
  if (opts.metrics !== null) {
    try {
      const { MetricsServer } = await import("./metrics.ts");
      metrics = MetricsServer.start(opts.metrics, ctx);
    } catch (e) {
      await fail("metrics", e);
    }
  }
  rates.start();
  let reloading: Promise<void> | undefined;
  const onHup = () => {
    log.info("SIGHUP: reloading {path}", { path: relay.configPath ?? "(no file)" });
    reloading = (reloading ?? Promise.resolve()).then(() =>
      relay.reload().then(logReload, (e) => {
        if (e instanceof ConfigError) {
          log.error("SIGHUP reload refused, nothing changed: {error}", { error: e.message });
        } else log.error("SIGHUP reload failed: {error}", { error: (e as Error).message });
      })
    );
  };
  Deno.addSignalListener("SIGHUP", onHup);
  return {
    ctx,
    control,
    async close() {
      Deno.removeSignalListener("SIGHUP", onHup);
      rates.stop();
      unlisten();
      await reloading;
      await control?.close();
      await readonly?.close();
      await metrics?.close();
    },
  };
}
