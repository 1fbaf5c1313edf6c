/**
 * What every handle wrapper needs and nothing else does: the loaded library,
 * C strings and error buffers, the one place a `-errno` return becomes an
 * exception ({@link check}, as sqlite3's `unwrap`), and handle creation
 * through an out-pointer ({@link open}).
 *
 * @module
 */
import { loadMcr, type McrLibrary } from "./load.ts";
import { McrError } from "./errors.ts";

/** Size of the error buffer handed to libmcr calls. */
export const ERRLEN = 256;
const enc = new TextEncoder();
const dec = new TextDecoder();

/** The loaded library (loaded on first use). */
export function lib(): McrLibrary {
  return loadMcr();
}

/** A NUL-terminated UTF-8 copy of `s`. */
export function cstr(s: string): Uint8Array {
  const b = new Uint8Array(enc.encode(s).length + 1);
  enc.encodeInto(s, b);
  return b;
}

/** The NUL-terminated text in `buf`. */
export function cText(buf: Uint8Array): string {
  const end = buf.indexOf(0);
  return dec.decode(buf.subarray(0, end < 0 ? buf.length : end));
}

/** An error buffer for one call and its length as the C `size_t` argument. */
export function errBuf(): [Uint8Array, bigint] {
  return [new Uint8Array(ERRLEN), BigInt(ERRLEN)];
}

/**
 * A libmcr return value: `r` when it is 0 or a count, else an McrError for
 * `call` with the message libmcr wrote into `err` (if any).
 */
export function check(call: string, r: number, err?: Uint8Array): number {
  if (r < 0) throw new McrError(call, r, err ? cText(err) : "");
  return r;
}

/**
 * Create a handle with a call of the form `f(..., T **out, char *err, size_t
 * errlen)`: `f` gets the out-pointer cell and the error buffer.
 */
export function open(
  call: string,
  f: (out: BigUint64Array, err: Uint8Array, errlen: bigint) => number,
): Deno.PointerObject {
  const out = new BigUint64Array(1);
  const [err, errlen] = errBuf();
  check(call, f(out, err, errlen), err);
  const p = Deno.UnsafePointer.create(out[0]);
  if (p === null) throw new Error(`${call} returned a null handle`);
  return p;
}

/** Byte-swap a host-order IPv4 address to the value C sees as network order. */
export function hton32(a: number): number {
  return (((a & 0xff) << 24) | ((a >>> 8 & 0xff) << 16) | ((a >>> 16 & 0xff) << 8) |
    (a >>> 24)) >>> 0;
}

/** A zero-copy view of `bytes` bytes of C memory at `p` (create once per handle). */
export function view(p: Deno.PointerValue, bytes: number): ArrayBuffer {
  if (p === null) throw new Error("libmcr returned a null pointer");
  return Deno.UnsafePointerView.getArrayBuffer(p, bytes);
}
