/**
 * Next hops of unicast outputs, IPv4 and IPv6 (src/datapath/next_hops.ts), against a model
 * of the kernel's neighbour table: FAILED, or INCOMPLETE at two checks in a
 * row, is an error with the reason until the next hop answers; a first
 * INCOMPLETE keeps the last verdict (no flapping while the kernel retries); no entry is no verdict; no route is an error; at most
 * MAX_CHECKS_PER_WINDOW lookups per window, round robin, so every
 * destination is looked at within a few windows. Output reasons in the
 * operator's terms (output_reasons.ts).
 */
import assert from "node:assert/strict";
import { type HopAnswer, MAX_CHECKS_PER_WINDOW, NextHops } from "../../src/datapath/next_hops.ts";
import { McrError, Nud } from "../../ffi/mod.ts";
import { installReason } from "../../src/datapath/output_reasons.ts";
import { formatIPv4, parseIPv4 } from "../../src/common/net.ts";
import { parseIPv6 } from "../../src/common/net6.ts";

const D = { ifindex: 3, ifname: "eth1", dst: parseIPv4("10.0.5.20")! };
const D6 = { ifindex: 3, ifname: "eth1", dst: 0, dst6: parseIPv6("fd00:5::20")! };

Deno.test("next hops: FAILED is an error until the next hop answers; INCOMPLETE keeps the verdict", () => {
  let state = 0;
  let calls = 0;
  const hops = new NextHops(() => (calls++, { address: "10.0.5.20", state }));
  hops.check([D]);
  assert.equal(hops.problem(D), "", "no entry: nothing sent there lately");
  state = Nud.INCOMPLETE;
  hops.check([D]);
  assert.equal(hops.problem(D), "", "resolution under way");
  state = Nud.FAILED;
  hops.check([D]);
  assert.match(hops.problem(D), /^next hop 10\.0\.5\.20 on eth1 does not answer ARP/);
  state = Nud.INCOMPLETE; // the kernel tries again: still an error
  hops.check([D]);
  assert.match(hops.problem(D), /does not answer ARP/);
  state = Nud.REACHABLE;
  hops.check([D]);
  assert.equal(hops.problem(D), "");
  // INCOMPLETE at two checks in a row: traffic flows to a next hop that never answers
  state = Nud.INCOMPLETE;
  hops.check([D]);
  assert.equal(hops.problem(D), "", "once: resolution under way");
  hops.check([D]);
  assert.match(hops.problem(D), /does not answer ARP \(neighbour INCOMPLETE\)/);
  state = Nud.REACHABLE;
  hops.check([D]);
  assert.equal(hops.problem(D), "");
  state = Nud.STALE;
  hops.check([D]);
  assert.equal(hops.problem(D), "");
  assert.equal(calls, 9);
  hops.check([]);
  assert.equal(hops.problem(D), "", "forgotten when no output uses it");
});

Deno.test("next hops: the gateway is named; no route is an error", () => {
  const hops = new NextHops((d) => {
    if (d.dst === D.dst) return { address: "10.0.5.1", state: Nud.FAILED };
    throw new McrError("mcr_neigh_state", -113, "route type 2");
  });
  const other = { ...D, dst: parseIPv4("10.9.9.9")! };
  hops.check([D, other]);
  assert.match(hops.problem(D), /^next hop 10\.0\.5\.1 \(the gateway to 10\.0\.5\.20\) on eth1/);
  assert.match(hops.problem(other), /^no route to 10\.9\.9\.9 on eth1 \(EHOSTUNREACH\)/);
});

Deno.test("next hops: IPv6 next hops are judged alike and named for neighbour discovery", () => {
  let answer: HopAnswer = { address: "fd00:5::20", state: Nud.REACHABLE };
  const asked: string[] = [];
  const hops = new NextHops((d) => (asked.push(d.dst6 ? "v6" : "v4"), answer));
  hops.check([D6, D]);
  assert.deepEqual(asked, ["v6", "v4"], "one lookup each: IPv4 and IPv6 destinations are apart");
  assert.equal(hops.problem(D6), "");
  answer = { address: "fd00:5::20", state: Nud.FAILED };
  hops.check([D6]);
  assert.match(
    hops.problem(D6),
    /^next hop fd00:5::20 on eth1 does not answer neighbour discovery \(neighbour FAILED\)/,
  );
  assert.equal(hops.problem(D), "", "forgotten: no output uses it any more");
  answer = { address: "fe80::1", state: Nud.INCOMPLETE };
  hops.check([D6]);
  hops.check([D6]);
  assert.match(
    hops.problem(D6),
    /^next hop fe80::1 \(the gateway to fd00:5::20\) on eth1 does not answer neighbour discovery \(neighbour INCOMPLETE\)/,
  );
  answer = { address: "fe80::1", state: Nud.STALE };
  hops.check([D6]);
  assert.equal(hops.problem(D6), "");
});

Deno.test("next hops: at most MAX_CHECKS_PER_WINDOW lookups per window, round robin", () => {
  const seen = new Map<number, number>();
  const hops = new NextHops((d) => {
    seen.set(d.dst, (seen.get(d.dst) ?? 0) + 1);
    return { address: formatIPv4(d.dst), state: Nud.FAILED };
  });
  const dests = Array.from({ length: 100 }, (_, i) => ({ ...D, dst: D.dst + i }));
  hops.check(dests);
  assert.equal(seen.size, MAX_CHECKS_PER_WINDOW);
  const windows = Math.ceil(100 / MAX_CHECKS_PER_WINDOW);
  for (let w = 1; w < windows; w++) hops.check(dests);
  assert.equal(seen.size, 100, "every destination looked at within a few windows");
  assert.ok(dests.every((d) => hops.problem(d) !== ""));
});

Deno.test("output reasons: libmcr's call names and template indices never reach the operator", () => {
  const e = new McrError(
    "mcr_fwd_set_template",
    -99,
    "template 12: bind 10.0.0.5:0 on eth1",
  );
  assert.equal(installReason(e), "bind 10.0.0.5:0 on eth1 (EADDRNOTAVAIL)");
  assert.equal(
    installReason(new Error("output interface eth9 does not exist")),
    "output interface eth9 does not exist",
  );
});
