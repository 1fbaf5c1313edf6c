/**
 * MLD memberships (src/relay/mld.ts) against a model of the kernel's
 * sockets: IPv6 input groups joined once however many rules share them,
 * left with the last, a full socket (ENOMEM: option memory) makes a new
 * one, a missing interface is pending and joined when it appears, a
 * re-created interface is joined again on its new index, IPv4 rules join
 * nothing here. And the file-descriptor estimate counts MLD sockets.
 */
import assert from "node:assert/strict";
import { type MldHolder, MldMemberships } from "../../src/relay/mld.ts";
import type { Links } from "../../src/relay/links.ts";
import type { RuleSpec } from "../../src/relay/tables.ts";
import { McrError } from "../../ffi/mod.ts";
import { formatIPv6, parseIPv6 } from "../../src/common/net6.ts";
import { MLD_PER_SOCKET, mldSocketsNeeded } from "../../src/relay/fd_budget.ts";

/** Sockets of at most `cap` memberships; what each holds, as "ifindex|group|source". */
class ModelKernel {
  readonly sockets: Set<string>[] = [];
  constructor(readonly cap: number) {}
  open = (): MldHolder => {
    const held = new Set<string>();
    this.sockets.push(held);
    const key = (i: number, g: Uint8Array, s: Uint8Array | null) =>
      `${i}|${text(g)}|${s ? text(s) : ""}`;
    return {
      add: (i, g, s) => {
        if (held.size >= this.cap) throw new McrError("mcr_mld_add", -12, "option memory full");
        held.add(key(i, g, s));
      },
      drop: (i, g, s) => {
        held.delete(key(i, g, s));
      },
      close: () => held.clear(),
    };
  };
  /** Every membership held. */
  all(): string[] {
    return this.sockets.flatMap((s) => [...s]).sort();
  }
}

function text(b: Uint8Array): string {
  const w = (i: number) => ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
  return formatIPv6([w(0), w(4), w(8), w(12)]);
}

function links(m: Map<string, number>): Links {
  return {
    get: (n: string) => (m.has(n) ? { ifindex: m.get(n)! } : undefined),
  } as unknown as Links;
}

function rule(id: string, ifname: string, group: string, source?: string): RuleSpec {
  const g = group.includes(":") ? parseIPv6(group)! : undefined;
  return {
    id,
    name: id,
    input: {
      interface: ifname,
      group: g ? g[3] : 0xef010101,
      prefixLen: g ? 128 : 32,
      port: 5001,
      source: 0,
      vlan: -1,
      joins: g ? [] : [0xef010101],
      ...(g ? { group6: g } : {}),
      ...(source ? { source6: parseIPv6(source)! } : {}),
    },
    outputs: [],
  };
}

Deno.test("MLD: shared joins, last rule leaves, full sockets, pending and re-created interfaces", () => {
  const k = new ModelKernel(2);
  const ifs = new Map([["eth0", 3]]);
  const m = new MldMemberships(links(ifs), k.open);
  const a = rule("a", "eth0", "ff15::1");
  const b = rule("b", "eth0", "ff15::1"); // the same membership
  const c = rule("c", "eth0", "ff3e::1", "2001:db8::1");
  const d = rule("d", "eth0", "ff15::2");
  const v4 = rule("v4", "eth0", "239.1.1.1");
  m.sync([a, b, c, d, v4]);
  assert.deepEqual(k.all(), ["3|ff15::1|", "3|ff15::2|", "3|ff3e::1|2001:db8::1"]);
  assert.equal(k.sockets.length, 2, "a full socket (ENOMEM) makes a new one");
  assert.deepEqual(m.stats().memberships, 3);
  m.change([], [a]);
  assert.ok(k.all().includes("3|ff15::1|"), "b still needs it");
  m.change([], [b]);
  assert.ok(!k.all().includes("3|ff15::1|"), "left with the last rule");
  // an interface that does not exist yet: pending, joined when it appears
  const e = rule("e", "eth9", "ff15::9");
  m.change([e], []);
  assert.equal(m.stats().pending, 1);
  ifs.set("eth9", 7);
  m.rejoin("eth9");
  assert.ok(k.all().includes("7|ff15::9|"));
  // re-created with another index: joined again there
  ifs.set("eth9", 8);
  m.rejoin("eth9");
  assert.ok(k.all().includes("8|ff15::9|") && !k.all().includes("7|ff15::9|"));
  const st = m.stats();
  assert.deepEqual([st.memberships, st.joined, st.pending, st.failed], [3, 3, 0, 0]);
  m.close();
  assert.deepEqual(k.all(), []);
});

Deno.test("MLD: a refused join is reported with its reason and tried again at the next change", () => {
  let refuse = true;
  const held: string[] = [];
  const m = new MldMemberships(links(new Map([["eth0", 3]])), () => ({
    add: (_i, g) => {
      if (refuse) throw new McrError("mcr_mld_add", -19, "no such device");
      held.push(text(g));
    },
    drop: () => {},
    close: () => {},
  }));
  m.sync([rule("a", "eth0", "ff15::1")]);
  const st = m.stats();
  assert.equal(st.failed, 1);
  assert.match(st.failures[0].reason, /no such device/);
  refuse = false;
  m.change([rule("b", "eth0", "ff15::2")], []);
  assert.deepEqual(held.sort(), ["ff15::1", "ff15::2"]);
});

Deno.test("fd budget: MLD sockets for the distinct IPv6 memberships", () => {
  const rules = Array.from(
    { length: MLD_PER_SOCKET + 1 },
    (_, i) => rule(`r${i}`, "eth0", `ff15::${(i + 1).toString(16)}`),
  );
  assert.equal(mldSocketsNeeded(rules), 2);
  assert.equal(mldSocketsNeeded([...rules, ...rules]), 2, "shared memberships count once");
  assert.equal(mldSocketsNeeded([rule("v4", "eth0", "239.1.1.1")]), 0);
});
