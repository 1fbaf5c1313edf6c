import assert from "node:assert/strict";
import fc from "fast-check";
import {
  formatIPv4,
  isLinkLocalMulticast,
  isMulticast,
  isUnicastUsable,
  parseIPv4,
  unicastProblem,
} from "../../src/common/net.ts";

const ip = (s: string): number => {
  const a = parseIPv4(s);
  assert.notEqual(a, null, s);
  return a!;
};

Deno.test("parseIPv4: canonical dotted quads", () => {
  assert.equal(parseIPv4("0.0.0.0"), 0);
  assert.equal(parseIPv4("255.255.255.255"), 0xffffffff);
  assert.equal(parseIPv4("239.1.2.3"), 0xef010203);
  assert.equal(parseIPv4("10.0.0.1"), 0x0a000001);
  assert.equal(parseIPv4("1.2.3.4"), 0x01020304);
  assert.equal(parseIPv4("128.0.0.0"), 2147483648, "unsigned, never negative");
  assert.equal(parseIPv4("100.200.10.0"), 0x64c80a00);
});

Deno.test("parseIPv4: rejects non-canonical and malformed text", () => {
  const bad = [
    "",
    "1.2.3",
    "1.2.3.4.5",
    "01.2.3.4",
    "1.2.3.04",
    "1.02.3.4",
    "00.0.0.0",
    "256.0.0.0",
    "1.2.3.256",
    "1.2.3.999",
    "1000.2.3.4",
    " 1.2.3.4",
    "1.2.3.4 ",
    "1.2.3.4\n",
    "1..3.4",
    ".1.2.3",
    "1.2.3.",
    "1.2.3.-4",
    "+1.2.3.4",
    "1.2.3.4/24",
    "0x1.2.3.4",
    "1.2.3.a",
    "1,2,3,4",
    "１.2.3.4",
    "10.1",
    "167772161",
    "::1",
    "1.2.3.4.",
  ];
  for (const s of bad) assert.equal(parseIPv4(s), null, JSON.stringify(s));
  // Not a string at all (from untyped JSON).
  assert.equal(parseIPv4(5 as unknown as string), null);
  assert.equal(parseIPv4(null as unknown as string), null);
});

Deno.test("formatIPv4: dotted quads from u32 (and any number mod 2^32)", () => {
  assert.equal(formatIPv4(0), "0.0.0.0");
  assert.equal(formatIPv4(0xffffffff), "255.255.255.255");
  assert.equal(formatIPv4(0xef010203), "239.1.2.3");
  assert.equal(formatIPv4(-1), "255.255.255.255");
  assert.equal(formatIPv4(0xef010203 | 0), "239.1.2.3", "signed int32 form");
});

Deno.test("property: parse/format round trips", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xffffffff }), (a) => {
      const s = formatIPv4(a);
      assert.equal(parseIPv4(s), a);
      assert.equal(formatIPv4(parseIPv4(s)!), s);
    }),
    { numRuns: 2000 },
  );
  // Any string that parses is canonical.
  fc.assert(
    fc.property(fc.stringMatching(/^[0-9.]{1,16}$/), (s) => {
      const a = parseIPv4(s);
      if (a !== null) assert.equal(formatIPv4(a), s);
    }),
    { numRuns: 2000 },
  );
});

Deno.test("isMulticast: 224.0.0.0/4 only", () => {
  for (const s of ["224.0.0.0", "224.0.0.1", "232.1.1.1", "239.255.255.255"]) {
    assert.ok(isMulticast(ip(s)), s);
  }
  for (const s of ["223.255.255.255", "240.0.0.0", "255.255.255.255", "0.0.0.0", "10.1.1.1"]) {
    assert.ok(!isMulticast(ip(s)), s);
  }
});

Deno.test("isLinkLocalMulticast: 224.0.0.0/24 only", () => {
  for (const s of ["224.0.0.0", "224.0.0.5", "224.0.0.22", "224.0.0.251", "224.0.0.255"]) {
    assert.ok(isLinkLocalMulticast(ip(s)), s);
  }
  for (const s of ["224.0.1.0", "224.0.1.129", "239.0.0.1", "225.0.0.1", "10.0.0.5"]) {
    assert.ok(!isLinkLocalMulticast(ip(s)), s);
  }
});

Deno.test("isUnicastUsable and unicastProblem", () => {
  for (const s of ["1.0.0.0", "10.0.0.1", "126.255.255.255", "128.0.0.1", "223.255.255.255"]) {
    assert.ok(isUnicastUsable(ip(s)), s);
    assert.equal(unicastProblem(ip(s)), null, s);
  }
  const bad: [string, RegExp][] = [
    ["0.0.0.0", /unspecified/],
    ["0.255.0.1", /this network/],
    ["127.0.0.1", /loopback/],
    ["127.1.2.3", /loopback/],
    ["224.0.0.1", /multicast/],
    ["239.1.1.1", /multicast/],
    ["240.0.0.1", /reserved/],
    ["255.255.255.254", /reserved/],
    ["255.255.255.255", /limited broadcast/],
  ];
  for (const [s, re] of bad) {
    assert.ok(!isUnicastUsable(ip(s)), s);
    assert.match(unicastProblem(ip(s)) ?? "", re, s);
  }
});

Deno.test("property: classifications agree with each other", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xffffffff }), (a) => {
      if (isLinkLocalMulticast(a)) assert.ok(isMulticast(a));
      if (isMulticast(a)) assert.ok(!isUnicastUsable(a));
      assert.equal(isUnicastUsable(a), unicastProblem(a) === null);
      // Signed and unsigned forms classify alike.
      assert.equal(isMulticast(a | 0), isMulticast(a));
      assert.equal(isUnicastUsable(a | 0), isUnicastUsable(a));
      assert.equal(isLinkLocalMulticast(a | 0), isLinkLocalMulticast(a));
    }),
    { numRuns: 2000 },
  );
});
