/**
 * src/config/json_text.ts agrees with `JSON.parse` on what is JSON (and on the
 * value), refuses duplicate keys, nesting and value counts over the limits,
 * and with `quote: false` never repeats the text.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { MAX_JSON_DEPTH, parseJsonText } from "../../src/config/json_text.ts";

const LIMITS = { maxValues: 1_000_000 };

/** JSON.parse's verdict: the value, or undefined when it throws. */
function reference(text: string): { ok: boolean; value?: unknown } {
  try {
    return { ok: true, value: JSON.parse(text.replace(/^\ufeff/, "")) };
  } catch {
    return { ok: false };
  }
}

function agrees(text: string): void {
  const ours = parseJsonText(text, LIMITS);
  const ref = reference(text);
  if (ours.ok) {
    assert.ok(ref.ok, `accepted what JSON.parse refuses: ${JSON.stringify(text)}`);
    assert.deepEqual(ours.value, ref.value);
  } else if (/^duplicate key/.test(ours.problem.message)) {
    // The first problem is a key that an earlier string of the text spells too (the text may
    // still have a syntax error further on).
    const strings = /"(?:[^"\\]|\\.)*"/g;
    const key = new RegExp(strings.source, "y");
    key.lastIndex = ours.problem.pos;
    const m = key.exec(text);
    assert.ok(m, `no key at the duplicate's position: ${JSON.stringify(text)}`);
    const earlier = (text.slice(0, ours.problem.pos).match(strings) ?? []).map((t) =>
      JSON.parse(t)
    );
    assert.ok(earlier.includes(JSON.parse(m[0])), `not a duplicate: ${JSON.stringify(text)}`);
  } else {
    assert.ok(!ref.ok, `refused valid JSON (${ours.problem.message}): ${JSON.stringify(text)}`);
    assert.ok(ours.problem.line >= 1 && ours.problem.column >= 1);
  }
}

Deno.test("property: parseJsonText agrees with JSON.parse", () => {
  // Found by the mutation below: a duplicate key comes before a syntax error.
  agrees('{"":true,"" ":0}');
  // Valid documents, pretty or not.
  fc.assert(fc.property(fc.json(), (t) => agrees(t)), { numRuns: 500 });
  fc.assert(
    fc.property(fc.jsonValue(), (v) => agrees(JSON.stringify(v, null, 2))),
    { numRuns: 300 },
  );
  // Documents with one character replaced, inserted or removed: mostly invalid.
  const mutated = fc.tuple(
    fc.json(),
    fc.nat(),
    fc.constantFrom(...'{}[]:,"\\ 0-.eE\n\tax'),
    fc.nat(2),
  )
    .map(([t, at, c, how]) => {
      const i = t.length === 0 ? 0 : at % t.length;
      if (how === 0) return t.slice(0, i) + c + t.slice(i + 1);
      if (how === 1) return t.slice(0, i) + c + t.slice(i);
      return t.slice(0, i) + t.slice(i + 1);
    });
  fc.assert(fc.property(mutated, (t) => agrees(t)), { numRuns: 3000 });
  fc.assert(fc.property(fc.string(), (t) => agrees(t)), { numRuns: 500 });
});

Deno.test("parseJsonText: duplicate keys, depth and value limits", () => {
  const dup = parseJsonText('{"a": {"b": 1, "b": 2}}', LIMITS);
  assert.ok(!dup.ok);
  assert.equal(dup.problem.message, 'duplicate key "b"');
  assert.deepEqual([dup.problem.line, dup.problem.column], [1, 16]);
  // Same key in sibling objects is fine.
  assert.ok(parseJsonText('[{"a": 1}, {"a": 2}]', LIMITS).ok);

  const ok = "[".repeat(MAX_JSON_DEPTH) + "]".repeat(MAX_JSON_DEPTH);
  assert.ok(parseJsonText(ok, LIMITS).ok);
  const deep = parseJsonText("[".repeat(100_000), LIMITS);
  assert.ok(!deep.ok && deep.problem.limit);
  assert.match(deep.problem.message, new RegExp(`nested deeper than ${MAX_JSON_DEPTH} levels`));
  assert.equal(deep.problem.column, MAX_JSON_DEPTH + 1);

  assert.ok(parseJsonText("[1, 2, 3]", { maxValues: 4 }).ok);
  const many = parseJsonText("[1, 2, 3, 4]", { maxValues: 4 });
  assert.ok(!many.ok && many.problem.limit);
  assert.equal(many.problem.column, 11);
});

Deno.test("parseJsonText: quote false names no character and no key", () => {
  for (const t of ['{"secret": 1, "secret": 2}', "secret", '{"a": 1} secret', '["secret" x]']) {
    const r = parseJsonText(t, { ...LIMITS, quote: false });
    assert.ok(!r.ok, t);
    assert.ok(!/secret|'s'|'x'/.test(r.problem.message), r.problem.message);
  }
});

/** `text` (pretty JSON) as JSONC: a trailing comma before every non-empty close, a comment on each line. */
function asJsonc(text: string): string {
  return text
    .replace(/([^[{\s])(\n\s*[\]}])/g, "$1,$2")
    .split("\n")
    .map((l, i) => (i % 2 ? `${l} // note ${i}` : `/* ${i} */ ${l}`))
    .join("\n");
}

Deno.test("property: with jsonc, comments and trailing commas change no value; strict JSON refuses them", () => {
  fc.assert(
    fc.property(fc.jsonValue(), (v) => {
      const text = asJsonc(JSON.stringify(v, null, 2));
      const ours = parseJsonText(text, { ...LIMITS, jsonc: true });
      assert.ok(ours.ok, `${JSON.stringify(text)}: ${!ours.ok && ours.problem.message}`);
      assert.deepEqual(ours.value, JSON.parse(JSON.stringify(v)));
      assert.equal(parseJsonText(text, LIMITS).ok, false, "strict JSON refuses comments");
    }),
    { numRuns: 300 },
  );
  // Valid JSON means the same in both modes.
  fc.assert(
    fc.property(fc.json(), (t) => {
      const strict = parseJsonText(t, LIMITS), jsonc = parseJsonText(t, { ...LIMITS, jsonc: true });
      assert.equal(jsonc.ok, strict.ok, t);
      if (strict.ok && jsonc.ok) assert.deepEqual(jsonc.value, strict.value);
    }),
    { numRuns: 300 },
  );
});

Deno.test("parseJsonText jsonc: problems keep their line and column; no prototype from a key", () => {
  const at = (t: string) => {
    const r = parseJsonText(t, { ...LIMITS, jsonc: true });
    assert.ok(!r.ok, t);
    return [r.problem.line, r.problem.column, r.problem.message];
  };
  assert.deepEqual(at('{\n  /* a */ "a": 1, // b\n  "a": 2\n}'), [3, 3, 'duplicate key "a"']);
  assert.deepEqual(at('{ "a": [1,, 2] }'), [1, 11, "expected a value, unexpected character ','"]);
  assert.deepEqual(at('{ "a": 1 } /* open'), [1, 12, "unterminated comment"]);
  const r = parseJsonText('{ "__proto__": { "polluted": 1 }, } // end', { ...LIMITS, jsonc: true });
  assert.ok(r.ok);
  const v = r.value as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(v), Object.prototype);
  assert.deepEqual(Object.keys(v), ["__proto__"]);
});
