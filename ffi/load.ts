/**
 * Finds and loads libmcr.
 *
 * Search order: `$MCR_LIB` (a file path), then next to this module
 * (`../build/libmcr.so`, `../lib/libmcr.so`, `./libmcr.so`), then next to the
 * running executable (`Deno.execPath()`, for a `deno compile` binary that ships
 * `libmcr.so` beside it). Every path tried is listed when loading fails.
 * Loading is lazy: nothing is opened until `loadMcr()` is first called, so
 * `deno doc` and `deno check` need no FFI permission.
 *
 * @module
 */
import { type McrSymbols, symbols } from "./symbols.ts";
import { checkAbi } from "./abi.ts";
import { McrLoadError } from "./errors.ts";

/** A loaded libmcr: its symbols and a way to close it. */
export interface McrLibrary extends Disposable {
  /** The bound C functions. */
  readonly sym: McrSymbols;
  /** Path the library was loaded from. */
  readonly path: string;
  /** Unload (only when no handle created from it is still open). */
  close(): void;
}

let cached: McrLibrary | undefined;

/** Candidate paths for libmcr, in the order they are tried. */
export function libraryCandidates(): string[] {
  const out: string[] = [];
  let env: string | undefined;
  try {
    env = Deno.env.get("MCR_LIB");
  } catch {
    env = undefined; // no --allow-env: skip the override
  }
  if (env) out.push(env);
  if (import.meta.url.startsWith("file:")) {
    // Resolved as URLs so the paths hold no "..": in a `deno compile` binary
    // these point into its embedded file system (`--include build/libmcr.so`),
    // whose lookup wants normalized paths. "./build/": with `deno compile
    // --bundle` this module is inlined into a bundle at the embedded root.
    for (
      const rel of ["../build/libmcr.so", "../lib/libmcr.so", "./libmcr.so", "./build/libmcr.so"]
    ) {
      out.push(decodeURIComponent(new URL(rel, import.meta.url).pathname));
    }
  }
  try {
    const exe = Deno.execPath();
    const exeDir = exe.slice(0, exe.lastIndexOf("/"));
    out.push(`${exeDir}/libmcr.so`, `${exeDir}/../lib/mcr/libmcr.so`);
  } catch {
    // execPath needs --allow-read in some setups; skip
  }
  return out;
}

function tryOpen(path: string): Deno.DynamicLibrary<typeof symbols> {
  return Deno.dlopen(path, symbols);
}

/** Load libmcr once per isolate (each Worker loads its own copy of the bindings). */
export function loadMcr(): McrLibrary {
  if (cached) return cached;
  const tried: { path: string; reason: string }[] = [];
  for (const path of libraryCandidates()) {
    let lib: Deno.DynamicLibrary<typeof symbols>;
    try {
      lib = tryOpen(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
        throw new Error(`loading libmcr needs --allow-ffi (${(e as Error).message})`);
      }
      tried.push({ path, reason: (e as Error).message.split("\n")[0] });
      continue;
    }
    const sym = lib.symbols;
    const problem = checkAbi({
      version: () => sym.mcr_abi_version(),
      sizeOf: (id) => sym.mcr_abi_sizeof(id),
      offsets: (id, out) => sym.mcr_abi_offsets(id, out, out.length),
      constants: (out) => sym.mcr_abi_constants(out, out.length),
    });
    if (problem) {
      lib.close();
      tried.push({ path, reason: problem });
      continue;
    }
    const l = lib;
    cached = {
      sym: l.symbols,
      path,
      close() {
        if (cached === this) cached = undefined;
        l.close();
      },
      [Symbol.dispose]() {
        this.close();
      },
    };
    return cached;
  }
  throw new McrLoadError(tried);
}
