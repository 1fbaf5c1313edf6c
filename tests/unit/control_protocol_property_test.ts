/**
 * Property tests (fast-check) for the control-protocol request parser
 * (src/control/protocol.ts): `decodeRequest` never throws and always yields a
 * request or a well-formed error reply; well-formed requests round-trip; the
 * line splitter reproduces any sequence of lines under any chunking, enforces
 * the size cap exactly and recovers after an oversized line.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  decodeRequest,
  LineSplitter,
  MAX_REQUEST_BYTES,
  PROTOCOL_VERSION,
} from "../../src/control/protocol.ts";

const CODES = new Set(["bad_request", "unsupported_version"]);
const enc = new TextEncoder();

function checkDecoded(line: string): void {
  const r = decodeRequest(line);
  if (r.ok) {
    assert.equal(r.req.v, PROTOCOL_VERSION);
    assert.ok(typeof r.req.cmd === "string");
    assert.ok(typeof r.req.id === "string" || typeof r.req.id === "number");
    return;
  }
  const rep = r.reply;
  assert.equal(rep.ok, false);
  assert.equal(rep.v, PROTOCOL_VERSION);
  assert.ok(CODES.has(rep.error.code), rep.error.code);
  assert.ok(rep.error.message.length > 0);
  assert.ok(rep.id === null || typeof rep.id === "string" || typeof rep.id === "number");
  // the reply itself is always encodable as one line
  const text = JSON.stringify(rep);
  assert.ok(!text.includes("\n"));
}

Deno.test("property: decodeRequest never throws on arbitrary text", () => {
  fc.assert(fc.property(fc.string({ maxLength: 300 }), checkDecoded), { numRuns: 2000 });
  fc.assert(fc.property(fc.string({ unit: "binary", maxLength: 200 }), checkDecoded), {
    numRuns: 1000,
  });
});

Deno.test("property: decodeRequest on arbitrary JSON values and near-requests", () => {
  fc.assert(fc.property(fc.jsonValue(), (v) => checkDecoded(JSON.stringify(v))), {
    numRuns: 1000,
  });
  const near = fc.record({
    v: fc.oneof(fc.constant(1), fc.integer(), fc.string(), fc.constant(null)),
    id: fc.oneof(fc.string({ maxLength: 300 }), fc.double(), fc.integer(), fc.constant(null)),
    cmd: fc.oneof(fc.string({ maxLength: 80 }), fc.integer()),
    args: fc.oneof(fc.dictionary(fc.string(), fc.jsonValue()), fc.jsonValue()),
  }, { requiredKeys: [] });
  fc.assert(fc.property(near, (v) => checkDecoded(JSON.stringify(v))), { numRuns: 2000 });
});

Deno.test("property: well-formed requests round-trip; the id is echoed on errors", () => {
  const id = fc.oneof(
    fc.string({ maxLength: 256 }),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
  );
  const req = fc.record({
    v: fc.constant(PROTOCOL_VERSION),
    id,
    cmd: fc.string({ maxLength: 64 }),
    args: fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 2 })),
  });
  fc.assert(
    fc.property(req, (q) => {
      const line = JSON.stringify(q);
      const r = decodeRequest(line);
      assert.ok(r.ok, line);
      // "__proto__" keys never reach a handler (zod drops them: no prototype pollution)
      const want = JSON.parse(line);
      delete want.args["__proto__"];
      assert.deepEqual(r.req, want);
      // a wrong version keeps the id in the error reply
      const bad = decodeRequest(JSON.stringify({ ...q, v: PROTOCOL_VERSION + 1 }));
      assert.ok(!bad.ok);
      assert.equal(bad.reply.error.code, "unsupported_version");
      assert.deepEqual(bad.reply.id, JSON.parse(line).id);
    }),
    { numRuns: 1000 },
  );
});

/** Expected splitter events for lines (each followed by "\n") with cap `max`. */
function model(lines: string[], max: number): ({ line: string } | { tooLarge: true })[] {
  return lines.map((l) =>
    enc.encode(l).length > max ? { tooLarge: true as const } : { line: l.replace(/\r$/, "") }
  );
}

/** Cut bytes at the given (sorted, deduplicated) positions. */
function chunk(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const pos = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of pos) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  out.push(bytes.subarray(prev));
  return out;
}

Deno.test("property: LineSplitter reproduces lines under any chunking and enforces the cap", () => {
  const line = fc.string({ unit: "grapheme", maxLength: 40 }).filter((s) => !s.includes("\n"));
  fc.assert(
    fc.property(
      fc.array(line, { maxLength: 12 }),
      fc.array(fc.nat(2000), { maxLength: 20 }),
      fc.integer({ min: 1, max: 48 }),
      (lines, cuts, max) => {
        const bytes = enc.encode(lines.map((l) => l + "\n").join(""));
        const sp = new LineSplitter(max);
        const got = chunk(bytes, cuts).flatMap((c) => sp.push(c));
        assert.deepEqual(got, model(lines, max));
        assert.equal(sp.end(), null, "nothing left over after complete lines");
      },
    ),
    { numRuns: 1500 },
  );
});

Deno.test("property: an unterminated last line comes out of end() (if within the cap)", () => {
  fc.assert(
    fc.property(
      fc.string({ maxLength: 30 }).filter((s) => !s.includes("\n") && s.length > 0),
      fc.array(fc.nat(100), { maxLength: 5 }),
      (tail, cuts) => {
        const sp = new LineSplitter(64);
        for (const c of chunk(enc.encode(tail), cuts)) assert.deepEqual(sp.push(c), []);
        const n = enc.encode(tail).length;
        assert.equal(sp.end(), n > 64 ? null : tail.replace(/\r$/, ""));
      },
    ),
  );
});

Deno.test("control request cap: MAX_REQUEST_BYTES passes, one byte more is too_large", () => {
  const sp = new LineSplitter();
  const at = "x".repeat(MAX_REQUEST_BYTES);
  assert.deepEqual(sp.push(enc.encode(at + "\n")), [{ line: at }]);
  assert.deepEqual(sp.push(enc.encode(at + "y\n")), [{ tooLarge: true }]);
  assert.deepEqual(sp.push(enc.encode('{"v":1}\n')), [{ line: '{"v":1}' }], "usable afterwards");
});

Deno.test("decodeRequest: a __proto__ key in args is dropped and pollutes nothing", () => {
  const r = decodeRequest('{"v":1,"id":1,"cmd":"add","args":{"__proto__":{"polluted":1},"a":2}}');
  assert.ok(r.ok);
  assert.deepEqual(Object.keys(r.req.args ?? {}), ["a"]);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.equal(Object.getPrototypeOf(r.req.args), Object.prototype);
});
