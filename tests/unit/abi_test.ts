/**
 * The bindings' view of the libmcr ABI (ffi/abi.ts) against the built
 * library, and the load-time check's messages when they differ.
 */
import assert from "node:assert/strict";
import { ABI_VERSION, type AbiProbe, checkAbi, STRUCTS } from "../../ffi/abi.ts";
import { lib } from "../../ffi/util.ts";

/** A probe that answers from the bindings' own tables (what a matching library says). */
function mirror(): AbiProbe {
  const byId = new Map(Object.values(STRUCTS).map((s) => [s.id, s]));
  return {
    version: () => ABI_VERSION,
    sizeOf: (id) => byId.get(id)!.size,
    offsets: (id, out) => {
      const v = Object.values(byId.get(id)!.field as Record<string, number>);
      out.set(v);
      return v.length;
    },
    constants: (out) => {
      const real = lib().sym;
      return real.mcr_abi_constants(out, out.length);
    },
  };
}

Deno.test("abi: the built libmcr matches every struct size, field offset and constant", () => {
  const s = lib().sym;
  assert.equal(
    checkAbi({
      version: () => s.mcr_abi_version(),
      sizeOf: (id) => s.mcr_abi_sizeof(id),
      offsets: (id, out) => s.mcr_abi_offsets(id, out, out.length),
      constants: (out) => s.mcr_abi_constants(out, out.length),
    }),
    null,
  );
});

Deno.test("abi: a drifted header is named at load (version, size, field, constant)", () => {
  assert.equal(checkAbi(mirror()), null);
  assert.match(
    checkAbi({ ...mirror(), version: () => 1 })!,
    new RegExp(`ABI version 1, expected ${ABI_VERSION}`),
  );
  assert.match(
    checkAbi({
      ...mirror(),
      sizeOf: (id) => (id === STRUCTS.tx_stats.id ? 96 : mirror().sizeOf(id)),
    })!,
    /struct mcr_tx_stats is 96 bytes, bindings expect 104/,
  );
  const shifted: AbiProbe = {
    ...mirror(),
    offsets: (id, out) => {
      const n = mirror().offsets(id, out);
      if (id === STRUCTS.template.id) out[4] += 2; // src_port moved
      return n;
    },
  };
  assert.match(
    checkAbi(shifted)!,
    /struct mcr_template field srcPort is at offset 18, bindings expect 16/,
  );
  const constant: AbiProbe = {
    ...mirror(),
    constants: (out) => {
      const n = mirror().constants(out);
      out[1] = 8;
      return n;
    },
  };
  assert.match(checkAbi(constant)!, /MCR_RX_NO_FILTER is 8, bindings expect 2/);
});

Deno.test("abi: libmcr exports exactly the functions the bindings bind (csrc/libmcr.map)", async () => {
  const { symbols } = await import("../../ffi/symbols.ts");
  const { REPO } = await import("../../lab/netns.ts");
  const out = await new Deno.Command("nm", {
    args: ["-D", "--defined-only", `${REPO}/build/libmcr.so`],
    stdout: "piped",
  }).output();
  const exported = new TextDecoder().decode(out.stdout).split("\n")
    .map((l) => l.trim().split(/\s+/)[2]?.replace(/@.*$/, ""))
    .filter((s): s is string => !!s && s.startsWith("mcr_"))
    .sort();
  assert.deepEqual(exported, Object.keys(symbols).sort());
  const map = await Deno.readTextFile(`${REPO}/csrc/libmcr.map`);
  const listed = [...map.matchAll(/^\s+(mcr_\w+);/gm)].map((m) => m[1]).sort();
  assert.deepEqual(listed, exported);
});
