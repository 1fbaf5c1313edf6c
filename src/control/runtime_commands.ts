/**
 * The control commands that change run-time state other than the rules:
 * `log-level` (levels per category) and `role` (active or standby, set by
 * keepalived's notify script: relay/role.ts). Both also just read it, which
 * is all a read-only socket lets them do.
 *
 * @module
 */
import { type Role, ROLES } from "../config/mod.ts";
import { getLogLevels, isLogLevel, logger, LogLevelError, setLogLevel } from "../common/log.ts";
import { ControlError } from "./protocol.ts";
import { str } from "./args.ts";
import type { Handler } from "./commands.ts";

const log = logger("control");

/** Longest `source` a `role` request may name (it is kept in stats and events). */
export const MAX_ROLE_SOURCE = 64;

/** `log-level` and `role`, by command name. */
export const RUNTIME_HANDLERS: Record<"log-level" | "role", Handler> = {
  "log-level"(_ctx, args) {
    const action = str(args, "action") ?? (args.level === undefined ? "get" : "set");
    const category = str(args, "category");
    if (action === "get") return Promise.resolve(getLogLevels());
    if (action !== "set") {
      throw new ControlError("bad_args", `args.action must be "get" or "set" (got "${action}")`);
    }
    const level = args.level;
    const next = level === "default" && category ? null : isLogLevel(level) ? level : undefined;
    if (next === undefined) {
      throw new ControlError(
        "bad_args",
        "args.level must be one of trace, debug, info, warning, error, fatal" +
          (category ? ', or "default" to drop the category override' : ""),
      );
    }
    try {
      setLogLevel(next, category);
    } catch (e) {
      if (e instanceof LogLevelError) throw new ControlError("bad_args", e.message);
      throw e;
    }
    log.info("log level of {category} set to {level}", {
      category: category ?? "(global)",
      level,
    });
    return Promise.resolve(getLogLevels());
  },

  role(ctx, args) {
    const role = args.role;
    if (role === undefined) return Promise.resolve(ctx.relay.role.stats());
    if (typeof role !== "string" || !(ROLES as readonly string[]).includes(role)) {
      throw new ControlError("bad_args", `args.role must be one of ${ROLES.join(", ")}`);
    }
    const source = str(args, "source") ?? "ctl";
    if (source.length > MAX_ROLE_SOURCE) {
      throw new ControlError(
        "bad_args",
        `args.source must be at most ${MAX_ROLE_SOURCE} characters`,
      );
    }
    const c = ctx.relay.role.set(role as Role, source);
    return Promise.resolve({ ...ctx.relay.role.stats(), previous: c.previous, changed: c.changed });
  },
};
