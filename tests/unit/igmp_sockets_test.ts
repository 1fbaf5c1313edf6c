/**
 * IGMP memberships packed into sockets (src/relay/igmp_sockets.ts) and the
 * relay's memberships over them (src/relay/igmp.ts), against a model of the
 * kernel's per-socket rules (lib_igmp_model.ts; csrc/tests/test_igmp.c and
 * tests/netns/igmp_test.ts check the same on a real kernel): as few sockets
 * as the limits allow, every membership in the kernel, nothing the rules do
 * not need, never an any-source and a source-specific entry of one group on
 * one socket, and refusals that name the sysctl to raise.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { JoinError, type Placement, SocketPacker } from "../../src/relay/igmp_sockets.ts";
import { Memberships } from "../../src/relay/igmp.ts";
import type { Links } from "../../src/relay/links.ts";
import type { RuleSpec } from "../../src/relay/tables.ts";
import { ENTRY_BYTES, ModelKernel } from "./lib_igmp_model.ts";
import { isMulticast } from "../../src/common/net.ts";

const IF = 7;
const G0 = 0xef000000; // 239.0.0.0
const SSM = 0xe8010101; // 232.1.1.1
const src = (i: number) => 0x0a000001 + i;

function packer(k: ModelKernel): SocketPacker {
  return new SocketPacker(k.open, k.limits);
}

/** Every socket within the kernel's limits, and no mode switch ever. */
function assertKernelSane(k: ModelKernel): void {
  assert.equal(k.switched, false, "an any-source entry was switched to source-specific");
  assert.equal(k.leftovers(), 0, "an include-mode entry without sources was left behind");
  for (const s of k.sockets) {
    assert.ok(s.entries.size <= k.maxMemberships || k.maxMemberships < 0);
    for (const e of s.entries.values()) assert.ok(e.sources.size <= Math.max(1, k.maxMsf));
  }
}

Deno.test("igmp packing: 65,536 groups take ceil(65536 / 20) = 3277 sockets, all joined", () => {
  const k = new ModelKernel();
  const p = packer(k);
  const N = 65_536;
  for (let i = 0; i < N; i++) p.join(IF, G0 + i, 0);
  assert.equal(p.sockets, 3277);
  assert.equal(k.sockets.size, 3277);
  assert.equal(k.keys().size, N);
  assertKernelSane(k);
  p.close();
  assert.equal(k.sockets.size, 0);
});

Deno.test("igmp packing: the limit read from the namespace decides (igmp_max_memberships=7)", () => {
  const k = new ModelKernel();
  k.maxMemberships = 7;
  const p = packer(k);
  const held: Placement[] = [];
  for (let i = 0; i < 50; i++) held.push(p.join(IF, G0 + i, 0));
  assert.equal(p.sockets, Math.ceil(50 / 7));
  // leaving the first 21 empties the first three sockets; compact closes them
  for (const h of held.slice(0, 21)) p.leave(h);
  assert.equal(p.compact(), 3);
  assert.equal(k.sockets.size, Math.ceil(29 / 7));
  assert.equal(k.keys().size, 29);
  assert.ok(!k.keys().has(`${IF}/${G0}`), "a left group is gone from the kernel");
  // new groups fill the room the leaves made before a socket is opened
  const opened = k.opened;
  p.join(IF, G0 + 100, 0);
  assert.equal(k.opened, opened, "no socket opened while one has room");
  assertKernelSane(k);
});

Deno.test("igmp packing: sources beyond igmp_max_msf take one socket per share of the group", () => {
  const k = new ModelKernel();
  k.maxMsf = 10;
  const p = packer(k);
  for (let i = 0; i < 25; i++) p.join(IF, SSM, src(i));
  assert.equal(p.sockets, 3, "25 sources of one group at 10 per socket");
  const v = k.view(IF, SSM);
  assert.equal(v.any, false);
  assert.equal(v.sources.size, 25);
  assertKernelSane(k);
});

Deno.test("igmp packing: (*,G) and (S,G) of one group never share a socket", () => {
  const k = new ModelKernel();
  k.maxMemberships = 3;
  const p = packer(k);
  p.join(IF, SSM, 0);
  p.join(IF, SSM, src(1));
  p.join(IF, SSM, src(2));
  assertKernelSane(k);
  assert.equal(p.sockets, 2);
  const v = k.view(IF, SSM);
  assert.equal(v.any, true, "the any-source membership stays any-source");
  assert.deepEqual([...v.sources].sort(), [src(1), src(2)]);
});

Deno.test("igmp packing: igmp_max_memberships=0 refuses with the sysctl named, nothing left open", () => {
  const k = new ModelKernel();
  k.maxMemberships = 0;
  const p = packer(k);
  assert.throws(() => p.join(IF, G0, 0), (e: unknown) => {
    assert.ok(e instanceof JoinError);
    assert.match(
      e.message,
      /net\.ipv4\.igmp_max_memberships=0 reached on IGMP socket 1 \(it holds 0 groups\); raise it: sysctl -w net\.ipv4\.igmp_max_memberships=20 \(per network namespace\)/,
    );
    return true;
  });
  assert.equal(k.sockets.size, 0);
  assert.equal(p.sockets, 0);
});

Deno.test("igmp packing: option memory (net.core.optmem_max) used up takes more sockets, then is named", () => {
  const k = new ModelKernel();
  k.optmemMax = 5 * ENTRY_BYTES + 10; // a socket's option memory holds 5 groups, below igmp_max_memberships
  const p = packer(k);
  for (let i = 0; i < 23; i++) p.join(IF, G0 + i, 0);
  assert.equal(p.sockets, 5, "ceil(23 / 5): each socket full at what its memory holds");
  assert.equal(k.keys().size, 23);
  assertKernelSane(k);
  k.optmemMax = 16;
  const q = packer(k);
  assert.throws(() => q.join(IF, G0 + 99, 0), (e: unknown) => {
    assert.ok(e instanceof JoinError);
    assert.match(e.message, /net\.core\.optmem_max=16 bytes of option memory used up/);
    assert.match(e.message, /sysctl -w net\.core\.optmem_max=131072/);
    return true;
  });
});

Deno.test("igmp packing: a source-specific join refused for its source list leaves no entry behind", () => {
  const k = new ModelKernel();
  // room for two entries but not for an entry and a source list next to another entry
  k.optmemMax = 2 * ENTRY_BYTES + 40;
  const p = packer(k);
  p.join(IF, G0, 0);
  p.join(IF, SSM, src(1)); // socket 1: entry yes, list no -> next socket
  assertKernelSane(k);
  assert.deepEqual([...k.view(IF, SSM).sources], [src(1)]);
  assert.equal(p.sockets, 2);
});

Deno.test("igmp packing: sources at igmp_max_msf and no room for a new group: both sysctls named", () => {
  const k = new ModelKernel();
  k.maxMemberships = 1;
  k.maxMsf = 2;
  const p = packer(k);
  p.join(IF, SSM, src(1));
  p.join(IF, SSM, src(2));
  assert.equal(p.sockets, 1);
  k.maxMemberships = 0; // lowered at run time
  assert.throws(() => p.join(IF, SSM, src(3)), (e: unknown) => {
    assert.ok(e instanceof JoinError);
    assert.match(
      e.message,
      /net\.ipv4\.igmp_max_msf=2 sources of 232\.1\.1\.1 reached on IGMP socket 1/,
    );
    assert.match(e.message, /net\.ipv4\.igmp_max_memberships=0 reached/);
    return true;
  });
  assert.equal(p.sockets, 1, "the refused attempt's socket is closed");
});

Deno.test("igmp packing: a limit lowered at run time is read again when the kernel refuses", () => {
  const k = new ModelKernel();
  const p = packer(k);
  for (let i = 0; i < 5; i++) p.join(IF, G0 + i, 0); // socket 1 holds 5, room for 15 more
  k.maxMemberships = 5; // nobody told the packer
  for (let i = 5; i < 12; i++) p.join(IF, G0 + i, 0);
  assert.equal(p.limits.maxMemberships, 5, "read again after the refusal");
  assert.equal(k.keys().size, 12);
  assert.equal(p.sockets, 3);
  assertKernelSane(k);
});

Deno.test("igmp packing: no descriptor left for a socket: the open-file limit is named", () => {
  const k = new ModelKernel();
  k.maxMemberships = 2;
  k.fdsLeft = 1;
  const p = packer(k);
  p.join(IF, G0, 0);
  p.join(IF, G0 + 1, 0);
  assert.throws(() => p.join(IF, G0 + 2, 0), (e: unknown) => {
    assert.ok(e instanceof JoinError);
    assert.match(e.message, /cannot open another IGMP socket/);
    assert.match(e.message, /1 IGMP sockets hold 2 groups/);
    assert.match(e.message, /ulimit -n; LimitNOFILE= in a systemd unit/);
    return true;
  });
});

Deno.test("igmp packing: a source left after its interface is gone goes with the group", () => {
  const k = new ModelKernel();
  const p = packer(k);
  const a = p.join(IF, SSM, src(1));
  const b = p.join(IF, SSM, src(2));
  k.gone.add(IF);
  p.leave(a); // ENODEV: stays in the kernel's list
  assert.equal(k.view(IF, SSM).sources.size, 2);
  p.leave(b); // the last one held: the whole group is dropped (works by ifindex)
  assert.equal(k.keys().size, 0);
  p.leave(b); // idempotent
  assert.equal(p.compact(), 1);
  assert.equal(k.sockets.size, 0);
});

Deno.test("igmp packing property: any join/leave sequence keeps the kernel equal to what is held", () => {
  const op = fc.record({
    leave: fc.boolean(),
    iface: fc.integer({ min: 1, max: 2 }),
    group: fc.integer({ min: 0, max: 6 }),
    source: fc.integer({ min: 0, max: 5 }),
  });
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 0, max: 3 }),
      fc.array(op, { maxLength: 120 }),
      (maxM, maxMsf, ops) => {
        const k = new ModelKernel();
        k.maxMemberships = maxM;
        k.maxMsf = maxMsf;
        const p = packer(k);
        const held = new Map<string, Placement>();
        for (const o of ops) {
          const key = `${o.iface}|${o.group}|${o.source}`;
          const h = held.get(key);
          if (o.leave && h) {
            p.leave(h);
            held.delete(key);
          } else if (!o.leave && !h) {
            held.set(key, p.join(o.iface, G0 + o.group, o.source ? src(o.source) : 0));
          }
          p.compact();
          assertKernelSane(k);
        }
        // the kernel receives exactly what is held, per (interface, group)
        const want = new Map<string, { any: boolean; sources: Set<number> }>();
        for (const key of held.keys()) {
          const [i, g, s] = key.split("|").map(Number);
          const w = want.get(`${i}/${G0 + g}`) ?? { any: false, sources: new Set<number>() };
          if (s === 0) w.any = true;
          else w.sources.add(src(s));
          want.set(`${i}/${G0 + g}`, w);
        }
        assert.deepEqual([...k.keys()].sort(), [...want.keys()].sort());
        for (const [key, w] of want) {
          const [i, g] = key.split("/").map(Number);
          const v = k.view(i, g);
          assert.equal(v.any, w.any, key);
          assert.deepEqual([...v.sources].sort(), [...w.sources].sort(), key);
        }
        if (held.size === 0) assert.equal(k.sockets.size, 0, "nothing held, nothing open");
      },
    ),
    { numRuns: 300 },
  );
});

// ---- Memberships: what the rules need, over the packer ----

function rule(i: number, ifname: string, group: number, source = 0, port = 5000): RuleSpec {
  return {
    id: `r${i}`,
    name: `r${i}`,
    input: {
      interface: ifname,
      group,
      prefixLen: 32,
      port: port + i,
      source,
      vlan: -1,
      joins: isMulticast(group) ? [group] : [],
    },
    outputs: [],
  };
}

/** A link table with the interfaces given (name → ifindex), changeable. */
function links(m: Map<string, number>): Links {
  return {
    get: (n: string) => (m.has(n) ? { ifindex: m.get(n)! } : undefined),
  } as unknown as Links;
}

Deno.test("memberships: sync joins what the rules need in ceil(N/limit) sockets, leaves the rest", () => {
  const k = new ModelKernel();
  k.maxMemberships = 4;
  const ifs = new Map([["eth0", 3]]);
  const ms = new Memberships(links(ifs), { openSocket: k.open, readLimits: k.limits });
  const rules = Array.from({ length: 10 }, (_, i) => rule(i, "eth0", G0 + i));
  // two rules on one group (different ports) are one membership
  rules.push(rule(10, "eth0", G0, 0, 7000));
  ms.sync(rules);
  let st = ms.stats();
  assert.equal(st.memberships, 10);
  assert.equal(st.joined, 10);
  assert.equal(st.sockets, 3);
  assert.deepEqual(st.limits, { max_memberships: 4, max_msf: 10, optmem_max: 131072 });
  ms.sync(rules.slice(0, 2));
  st = ms.stats();
  assert.equal(st.joined, 2);
  assert.equal(k.keys().size, 2);
  assert.equal(st.sockets, 1, "sockets left empty are closed");
  ms.close();
  assert.equal(k.sockets.size, 0);
});

Deno.test("memberships: a unicast input joins nothing (no IGMP for the relay's own or a mirrored address)", () => {
  const k = new ModelKernel();
  const ms = new Memberships(links(new Map([["eth0", 3]])), {
    openSocket: k.open,
    readLimits: k.limits,
  });
  const own = rule(1, "eth0", 0x0a000005), mirrored = rule(2, "eth0", 0xc0a80109, src(1));
  ms.sync([rule(0, "eth0", G0), own, mirrored]);
  let st = ms.stats();
  assert.deepEqual([st.memberships, st.joined, st.failed, st.pending], [1, 1, 0, 0]);
  assert.deepEqual([...k.keys()], [`3/${G0}`]);
  // live changes: adding and removing unicast rules touches no membership
  ms.change([rule(3, "eth0", 0x0a000006)], [own]);
  ms.change([], [mirrored]);
  st = ms.stats();
  assert.deepEqual([st.memberships, st.joined, st.failed, st.failures.length], [1, 1, 0, 0]);
  assert.deepEqual([...k.keys()], [`3/${G0}`]);
  ms.close();
  assert.equal(k.sockets.size, 0);
});

/** A range rule: its network address, prefix length, and the groups it lists in `joins`. */
function rangeRule(
  i: number,
  ifname: string,
  net: number,
  len: number,
  joins: number[],
  source = 0,
) {
  const r = rule(i, ifname, net, source);
  return { ...r, input: { ...r.input, prefixLen: len, port: 0, joins } };
}

Deno.test("memberships: a range joins its `joins` (never the range itself), shared with exact rules", () => {
  const k = new ModelKernel();
  const ms = new Memberships(links(new Map([["eth0", 3]])), {
    openSocket: k.open,
    readLimits: k.limits,
  });
  const net = 0xef010000; // 239.1.0.0/16
  const range = rangeRule(0, "eth0", net, 16, [net + 0x0101, net + 0x0203]);
  const exact = rule(1, "eth0", net + 0x0101); // 239.1.1.1, also in the range's joins
  const flooded = rangeRule(2, "eth0", 0xef020000, 16, []); // fed by flooding: joins nothing
  ms.sync([range, exact, flooded]);
  let st = ms.stats();
  assert.deepEqual([st.memberships, st.joined], [2, 2]);
  assert.deepEqual([...k.keys()].sort(), [`3/${net + 0x0101}`, `3/${net + 0x0203}`]);
  // the range leaves: 239.1.1.1 stays for the exact rule, 239.1.2.3 goes
  ms.change([], [range]);
  assert.deepEqual([...k.keys()], [`3/${net + 0x0101}`]);
  // an (S, range) rule joins its groups source-specific
  const ssm = rangeRule(3, "eth0", net, 16, [net + 0x0505], src(1));
  ms.change([ssm], []);
  st = ms.stats();
  assert.deepEqual([st.memberships, st.joined, st.failed], [2, 2, 0]);
  const v = k.view(3, net + 0x0505);
  assert.deepEqual([v.any, [...v.sources]], [false, [src(1)]]);
  ms.close();
  assert.equal(k.sockets.size, 0);
});

Deno.test("memberships: a group with more sources than igmp_max_msf is placed before any-source ones", () => {
  const k = new ModelKernel();
  k.maxMemberships = 4;
  k.maxMsf = 2;
  const ms = new Memberships(links(new Map([["eth0", 3]])), {
    openSocket: k.open,
    readLimits: k.limits,
  });
  // 13 any-source groups listed first, then 5 sources of one group: 13 + 3 entries
  const rules = [
    ...Array.from({ length: 13 }, (_, i) => rule(i, "eth0", G0 + i)),
    ...Array.from({ length: 5 }, (_, i) => rule(20 + i, "eth0", SSM, src(i))),
  ];
  ms.sync(rules);
  assert.equal(ms.stats().joined, 18);
  assert.equal(ms.stats().sockets, 4, "ceil(16 entries / 4): the fewest the limits allow");
  assertKernelSane(k);
});

Deno.test("memberships: an interface re-created with a new index is joined again, nothing leaks", () => {
  const k = new ModelKernel();
  k.maxMemberships = 4;
  const ifs = new Map([["eth0", 3], ["eth1", 4]]);
  const ms = new Memberships(links(ifs), { openSocket: k.open, readLimits: k.limits });
  const rules = [
    ...Array.from({ length: 6 }, (_, i) => rule(i, "eth0", G0 + i)),
    ...Array.from({ length: 3 }, (_, i) => rule(10 + i, "eth1", G0 + i)),
    rule(20, "eth0", SSM, src(1)),
    rule(21, "eth0", SSM, src(2)),
  ];
  ms.sync(rules);
  assert.equal(k.keys().size, 10);
  k.gone.add(3);
  ifs.set("eth0", 9); // deleted and re-created
  ms.rejoin("eth0");
  const keys = k.keys();
  assert.equal([...keys].filter((x) => x.startsWith("3/")).length, 0, "nothing on the old index");
  assert.equal([...keys].filter((x) => x.startsWith("9/")).length, 7);
  assert.equal([...keys].filter((x) => x.startsWith("4/")).length, 3, "eth1 untouched");
  assert.deepEqual([...k.view(9, SSM).sources].sort(), [src(1), src(2)]);
  assert.equal(ms.stats().sockets, Math.ceil(10 / 4));
  assertKernelSane(k);
});

Deno.test("memberships: refusals are reported with their reason, missing interfaces as pending", () => {
  const k = new ModelKernel();
  k.maxMemberships = 0;
  const ifs = new Map([["eth0", 3]]);
  const ms = new Memberships(links(ifs), { openSocket: k.open, readLimits: k.limits });
  ms.sync([rule(0, "eth0", G0), rule(1, "eth0", SSM, src(1)), rule(2, "nope0", G0 + 1)]);
  const st = ms.stats();
  assert.equal(st.memberships, 3);
  assert.equal(st.joined, 0);
  assert.equal(st.pending, 1);
  assert.equal(st.failed, 2);
  assert.deepEqual(st.failures.map((f) => [f.interface, f.group, f.source]), [
    ["eth0", "239.0.0.0", undefined],
    ["eth0", "232.1.1.1", "10.0.0.2"],
  ]);
  for (const f of st.failures) assert.match(f.reason, /net\.ipv4\.igmp_max_memberships=0/);
  // raised: the next change joins them
  k.maxMemberships = 20;
  ms.sync([rule(0, "eth0", G0), rule(1, "eth0", SSM, src(1))]);
  assert.equal(ms.stats().joined, 2);
  assert.equal(ms.stats().limits.max_memberships, 20);
});
