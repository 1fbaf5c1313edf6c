/**
 * Which rules `list` and `stats` answer: their arguments (a filter, an order,
 * a limit, a view and whether to stream; see `ViewArgs` (results.ts))
 * validated, and the filter applied. Filtering happens here, in the daemon,
 * so that a client asking about one rule of 65,536 receives one rule.
 *
 * @module
 */
import { isValidInterfaceName, RULE_NAME_RE } from "../config/schema.ts";
import { inPrefix, parseIPv4, parsePrefix } from "../common/net.ts";
import { canonicalIPv6, parseIPv6Any } from "../common/net6.ts";
import { ControlError } from "./protocol.ts";
import { type RuleFilter, SORT_KEYS, type SortKey, type View, VIEWS } from "./results.ts";

/** The arguments `list` and `stats` accept. */
const VIEW_ARG_KEYS = ["rule", "interface", "group", "view", "sort", "limit", "stream"] as const;

/** `ViewArgs` (results.ts) with the defaults of a view decided. */
export interface ParsedViewArgs {
  /** The filter (only the given fields). */
  filter: RuleFilter;
  /** Asked view. */
  view: View;
  /** Asked order, if any. */
  sort?: SortKey;
  /** Asked limit, if any. */
  limit?: number;
  /** Answer as a stream of records. */
  stream: boolean;
}

/**
 * Validate the arguments of `list`/`stats` (`cmd` names the command in
 * errors). Unknown arguments are refused, so that a misspelt filter does not
 * silently answer every rule.
 * @throws {ControlError} bad_args, saying which argument and what it must be
 */
export function parseViewArgs(cmd: string, args: Record<string, unknown>): ParsedViewArgs {
  for (const k of Object.keys(args)) {
    if (!(VIEW_ARG_KEYS as readonly string[]).includes(k)) {
      throw new ControlError(
        "bad_args",
        `${cmd} has no argument "${k.slice(0, 64)}" (known: ${VIEW_ARG_KEYS.join(", ")})`,
      );
    }
  }
  const filter: RuleFilter = {};
  const { rule, interface: iface, group, view, sort, limit, stream } = args;
  if (rule !== undefined) {
    if (typeof rule !== "string" || !RULE_NAME_RE.test(rule.replace(PATH_SUFFIX, ""))) {
      throw new ControlError(
        "bad_args",
        "args.rule must be a rule name or id (1 to 64 characters of A-Z a-z 0-9 _ . : -), " +
          "or one path NAME[k] of a rule with redundant inputs",
      );
    }
    filter.rule = rule;
  }
  if (iface !== undefined) {
    if (!isValidInterfaceName(iface)) {
      throw new ControlError(
        "bad_args",
        "args.interface must be an interface name (1 to 15 printable ASCII characters without " +
          'space or "/")',
      );
    }
    filter.interface = iface;
  }
  if (group !== undefined) {
    if (typeof group !== "string" || (parseIPv4(group) === null && parseIPv6Any(group) === null)) {
      throw new ControlError(
        "bad_args",
        "args.group must be an IPv4 address as a dotted quad, such as 239.1.1.1, or an IPv6 " +
          "address, such as ff3e::1",
      );
    }
    filter.group = canonicalIPv6(group) ?? group;
  }
  if (view !== undefined && !(VIEWS as readonly unknown[]).includes(view)) {
    throw new ControlError("bad_args", `args.view must be one of ${VIEWS.join(", ")}`);
  }
  if (sort !== undefined && !(SORT_KEYS as readonly unknown[]).includes(sort)) {
    throw new ControlError("bad_args", `args.sort must be one of ${SORT_KEYS.join(", ")}`);
  }
  if (limit !== undefined && !(Number.isSafeInteger(limit) && (limit as number) >= 1)) {
    throw new ControlError("bad_args", "args.limit must be a positive integer");
  }
  if (stream !== undefined && typeof stream !== "boolean") {
    throw new ControlError("bad_args", "args.stream must be true or false");
  }
  return {
    filter,
    view: (view as View | undefined) ?? "full",
    ...(sort !== undefined ? { sort: sort as SortKey } : {}),
    ...(limit !== undefined ? { limit: limit as number } : {}),
    stream: stream === true,
  };
}

/** What a filter needs of a rule (both `RuleConfig` and `RuleStats` have it). */
interface Filterable {
  readonly id: string;
  readonly name: string;
  readonly input: { readonly interface: string; readonly group: string };
  readonly outputs: readonly { readonly interface: string; readonly group: string }[];
}

/** The rule a stats entry is a path of (`RuleStats.redundancy.rule`), if it is one. */
function pathOf(r: object): string | undefined {
  const red = (r as { redundancy?: { rule?: unknown } }).redundancy;
  return typeof red?.rule === "string" ? red.rule : undefined;
}

/** A path's suffix of a rule name (`cam[1]`: input 1 of the redundant rule `cam`). */
const PATH_SUFFIX = /\[[0-9]\]$/;

/**
 * The rules `nameOrId` names: the one with that name (for a rule with
 * redundant inputs, its paths `NAME[k]`), else every one with that id.
 */
export function findRules<T extends Filterable>(rules: readonly T[], nameOrId: string): T[] {
  const byName = rules.filter((r) => r.name === nameOrId || pathOf(r) === nameOrId);
  return byName.length > 0 ? byName : rules.filter((r) => r.id === nameOrId);
}

/** Whether a rule's group as shown (an address, a range "239.1.0.0/16", "keep") covers `g`. */
function covers(shown: string, g: string): boolean {
  if (shown === g) return true;
  const p = shown.includes("/") ? parsePrefix(shown) : null;
  const a = parseIPv4(g);
  return p !== null && a !== null && inPrefix(a, p.addr, p.len);
}

/**
 * Whether `r` matches the interface and group of `f` (not its rule); a range
 * (input, or an output it maps into) matches every group inside it.
 */
function matchesWhere(r: Filterable, f: RuleFilter): boolean {
  if (
    f.interface !== undefined && r.input.interface !== f.interface &&
    !r.outputs.some((o) => o.interface === f.interface)
  ) return false;
  const g = f.group;
  if (
    g !== undefined && !covers(r.input.group, g) && !r.outputs.some((o) => covers(o.group, g))
  ) return false;
  return true;
}

/**
 * The rules of `rules` that `f` matches, in their order.
 * @throws {ControlError} not_found when `f.rule` names no rule of `rules` at all
 */
export function selectRules<T extends Filterable>(rules: readonly T[], f: RuleFilter): T[] {
  let from: readonly T[] = rules;
  if (f.rule !== undefined) {
    from = findRules(rules, f.rule);
    if (from.length === 0) {
      throw new ControlError("not_found", `no rule named or with id "${f.rule}"`);
    }
  }
  return f.interface === undefined && f.group === undefined
    ? from.slice()
    : from.filter((r) => matchesWhere(r, f));
}
