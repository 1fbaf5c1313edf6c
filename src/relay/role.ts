/**
 * The relay's role (`role` in rules.json, `mcr ctl role`, `Relay.role`):
 * `active` forwards, `standby` keeps its rings, IGMP memberships and tables
 * hot, runs every datagram through its rules and sends nothing — each
 * datagram it would have sent is counted on its output as `standby`
 * (datapath/standby.ts). One relay of an active/standby pair is active; VRRP
 * (keepalived) decides which, and its notify script calls `mcr ctl role`
 * (packaging/keepalived/).
 *
 * A change reaches every data-path worker through its control block without
 * a table rebuild: each worker runs its next batch with it. Datagrams already
 * handed to a TX ring before a switch to standby still leave. A change is an
 * event (`type: "role"`) and is logged; setting the role in force changes
 * nothing.
 *
 * The role is run-time state, like the rules `ctl add` makes: a reload
 * applies the file's `role` only when that value changed in the file since it
 * was last read, so a reload (a rule edit, `systemctl reload`) never undoes
 * what keepalived set, and an operator who edits `role` and reloads gets it.
 *
 * @module
 */
import type { Role } from "../config/mod.ts";
import type { RelayEvent } from "./events.ts";
import { logger } from "../common/log.ts";

/** What stats report about the role. */
export interface RoleStats {
  /** The role in force. */
  role: Role;
  /** Changes since the relay started. */
  changes: number;
  /** When the role in force was taken (ISO 8601). */
  since: string;
  /** Who set it: `config` (the file, at start or reload), or who asked `ctl role` (`ctl`, ...). */
  set_by: string;
}

/** A role change, as {@link RelayRole.set} reports it. */
export interface RoleChange {
  /** The role in force now. */
  role: Role;
  /** The role before. */
  previous: Role;
  /** False when the role was already in force (nothing happened). */
  changed: boolean;
}

/** What reading a file would do to the role, when its `role` differs from the one in force. */
export interface RoleDiff {
  /** The role in force. */
  in_force: Role;
  /** The file's `role`. */
  file: Role;
  /**
   * True: the file's `role` was edited since it was last read, so a reload
   * applies it. False: the role in force was set at run time (`ctl role`, a
   * keepalived script) and a reload keeps it.
   */
  applies: boolean;
}

/** Who sets the role from the configuration file. */
export const ROLE_SET_BY_CONFIG = "config";

/** The role of a relay and its changes (see module doc). */
export class RelayRole {
  #role: Role;
  #changes = 0;
  #since = new Date().toISOString();
  #setBy = ROLE_SET_BY_CONFIG;
  /** The file's `role` when it was last read (start or reload). */
  #fileRole: Role;

  /**
   * @param fileRole the configuration's `role` at start
   * @param apply puts the data path in standby (true) or active (false)
   * @param emit tells the relay's subscribers about a change
   */
  constructor(
    fileRole: Role,
    readonly apply: (standby: boolean) => void,
    readonly emit: (ev: RelayEvent) => void,
  ) {
    this.#role = fileRole;
    this.#fileRole = fileRole;
    apply(fileRole === "standby");
  }

  /** The role in force. */
  get current(): Role {
    return this.#role;
  }

  /**
   * Make the relay active or a standby (see module doc).
   * @param setBy who asks (stats and the event say it): `ctl`, a keepalived script, ...
   */
  set(role: Role, setBy = "api"): RoleChange {
    const previous = this.#role;
    if (role === previous) return { role, previous, changed: false };
    this.#role = role;
    this.#changes++;
    this.#since = new Date().toISOString();
    this.#setBy = setBy;
    this.apply(role === "standby");
    logger("supervisor").info("role {role} (was {previous}), set by {setBy}", {
      role,
      previous,
      setBy,
    });
    this.emit({ type: "role", role, previous, set_by: setBy });
    return { role, previous, changed: true };
  }

  /**
   * A reload read a file saying `fileRole`: apply it when its value changed
   * since the file was last read, else keep the role in force.
   */
  reloaded(fileRole: Role): void {
    const edited = fileRole !== this.#fileRole;
    this.#fileRole = fileRole;
    if (edited) this.set(fileRole, ROLE_SET_BY_CONFIG);
  }

  /** What a reload of a file saying `fileRole` would do (undefined: it says the role in force). */
  diff(fileRole: Role): RoleDiff | undefined {
    if (fileRole === this.#role) return undefined;
    return { in_force: this.#role, file: fileRole, applies: fileRole !== this.#fileRole };
  }

  /** For stats. */
  stats(): RoleStats {
    return { role: this.#role, changes: this.#changes, since: this.#since, set_by: this.#setBy };
  }
}
