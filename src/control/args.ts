/**
 * The arguments of control requests (`args`): a missing or mistyped one is a
 * `bad_args` error that names it.
 *
 * @module
 */
import { ControlError } from "./protocol.ts";

/** `args[key]` as a non-empty string (absent: undefined, unless `required`). */
export function str(args: Record<string, unknown>, key: string, required: true): string;
export function str(
  args: Record<string, unknown>,
  key: string,
  required?: false,
): string | undefined;
export function str(
  args: Record<string, unknown>,
  key: string,
  required = false,
): string | undefined {
  const v = args[key];
  if (v === undefined && !required) return undefined;
  if (typeof v !== "string" || v.length === 0) {
    throw new ControlError("bad_args", `args.${key} must be a non-empty string`);
  }
  return v;
}

/** `args[key]` as a flag: absent = false. */
export function flag(args: Record<string, unknown>, key: string): boolean {
  const v = args[key];
  if (v === undefined) return false;
  if (typeof v !== "boolean") {
    throw new ControlError("bad_args", `args.${key} must be true or false`);
  }
  return v;
}

/**
 * `args[key]` as an integer from `min` to `max` (absent: `dflt`).
 * @throws {ControlError} `bad_args` naming the argument and the range
 */
export function int(
  args: Record<string, unknown>,
  key: string,
  min: number,
  max: number,
  dflt: number,
): number {
  const v = args[key];
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new ControlError("bad_args", `args.${key} must be an integer from ${min} to ${max}`);
  }
  return v;
}
