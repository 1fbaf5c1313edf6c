/**
 * Which link types the relay serves (src/datapath/link_types.ts) and what
 * happens to rules on the others: the decision function for every known
 * ARPHRD type; an input interface of an unsupported type puts the interface
 * and its rules in error with the reason — never active, even while a ring
 * still runs —; an output on one puts its rule in error too
 * (src/relay/output_link_types.ts), decided again when the interface is
 * re-created as another type; the interface lookup reports the link type
 * (lo: loopback).
 */
import assert from "node:assert/strict";
import {
  ARPHRD,
  linkLayout,
  linkTypeName,
  linkTypeProblem,
  SUPPORTED_LINKS,
} from "../../src/datapath/link_types.ts";
import { OutputLinkTypes } from "../../src/relay/output_link_types.ts";
import { collectStats, countRuleStates, type WorkerView } from "../../src/relay/stats.ts";
import { Clock, inputState, ruleErrorsOf } from "../../src/relay/states.ts";
import type { RuleSpec } from "../../src/relay/tables.ts";
import type { Links } from "../../src/relay/links.ts";
import { IFF_LOWER_UP, IFF_UP, type LinkState } from "../../src/datapath/link_table.ts";
import { COUNTER_SLOTS, newCounterBlock, W } from "../../src/datapath/counters.ts";
import type { WorkerTable } from "../../src/datapath/messages.ts";
import { ifaceByName } from "../../ffi/mod.ts";

Deno.test("link types: Ethernet and links without a link-layer header are served", () => {
  assert.equal(linkLayout(ARPHRD.ETHER), "ethernet");
  for (const t of [ARPHRD.NONE, ARPHRD.TUNNEL, ARPHRD.TUNNEL6, ARPHRD.SIT, ARPHRD.PPP]) {
    assert.equal(linkLayout(t), "ip", linkTypeName(t));
    assert.equal(linkTypeProblem("input", "x", t), undefined);
    assert.equal(linkTypeProblem("output", "x", t), undefined);
  }
  assert.equal(linkLayout(ARPHRD.RAWIP), "ip");
  assert.equal(linkTypeName(ARPHRD.NONE), "none (tun, WireGuard) (ARPHRD 65534)");
});

Deno.test("link types: loopback, GRE and unknown link headers are refused, with the reason", () => {
  const refused = [
    ARPHRD.LOOPBACK,
    ARPHRD.IPGRE,
    ARPHRD.IP6GRE,
    ARPHRD.INFINIBAND,
    ARPHRD.CAN,
    ARPHRD.IEEE80211_RADIOTAP,
    ARPHRD.NETLINK,
    0,
    6,
    1234,
  ];
  for (const t of refused) {
    assert.equal(linkLayout(t), undefined, `type ${t}`);
    const why = linkTypeProblem("input", "if9", t)!;
    assert.match(why, new RegExp(`^input interface if9 is .*\\(?ARPHRD ${t}\\)?`), why);
    assert.match(linkTypeProblem("output", "if9", t)!, /^output interface if9 is /);
  }
  assert.match(linkTypeProblem("input", "lo", ARPHRD.LOOPBACK)!, /loopback.*host sends to itself/);
  assert.match(linkTypeProblem("output", "gre1", ARPHRD.IPGRE)!, /GRE.*gretap or ipip/);
  assert.equal(
    linkTypeProblem("input", "ib0", ARPHRD.INFINIBAND),
    "input interface ib0 is InfiniBand (ARPHRD 32), a link type mcr cannot relay (unknown link " +
      `header); supported are ${SUPPORTED_LINKS}`,
  );
  assert.match(linkTypeProblem("input", "x", 1234)!, /is ARPHRD 1234, a link type/);
});

Deno.test({
  name: "link types: the interface lookup reports the link type (lo is loopback)",
  ignore: Deno.env.get("MCR_LIB") === undefined,
  fn() {
    const lo = ifaceByName("lo");
    assert.equal(lo.linkType, ARPHRD.LOOPBACK);
    assert.equal(lo.mac, null);
  },
});

const up = (type: number): LinkState => ({
  ifindex: 7,
  flags: IFF_UP | IFF_LOWER_UP,
  mtu: 1500,
  type,
});

/**
 * The stats of input interface in0 of link type `type` with one rule (`id`, outputs on
 * `outputs`), its ring running; `own`: rules' own errors.
 */
function statsOn(
  type: number,
  outputs: string[] = ["eth1"],
  own?: ReadonlyMap<string, string>,
  id = "a",
) {
  const counters = newCounterBlock();
  counters[W.heartbeat] = Date.now();
  const worker: WorkerView = {
    index: 0,
    state: "running",
    restarts: 0,
    counters,
    retired: new Float64Array(counters.length),
    worker: {},
  };
  const links = {
    get: (n: string) => n === "in0" ? up(type) : up(ARPHRD.ETHER),
  } as unknown as Links;
  const table: WorkerTable = {
    version: 1,
    interface: "in0",
    rules: [{
      id,
      name: id,
      slot: 0,
      group: 0xef010101,
      prefixLen: 32,
      port: 5000,
      source: 0,
      vlan: -1,
      outputs: outputs.map((o, k) => ({
        slot: k,
        interface: o,
        dst: 0xef0a0101,
        hostBits: 0,
        port: 6000,
        srcIp: 0,
        srcPort: 0,
        ttl: 1,
        tos: 0,
      })),
    }],
  };
  const input = {
    name: "in0",
    slot: 0,
    gen: 1,
    fanoutId: 7,
    table,
    // a ring that still runs (opened before the interface was re-created as another type)
    members: [{ index: 0, state: "running" as const, restarts: 0, retiredFrames: 0, worker }],
  };
  const source = {
    inputs: [input],
    workers: [worker],
    retired: new Float64Array(COUNTER_SLOTS),
    links,
    outputErrors: new Map(),
    ruleErrors: own,
  };
  const stats = collectStats(source);
  // the cheap count (ready line, systemd status) says what the stats say
  const counts = { active: 0, pending: 0, error: 0 };
  for (const r of stats.rules) counts[r.state]++;
  assert.deepEqual(countRuleStates(source), counts);
  return { state: inputState(input, links, new Clock()), stats };
}

Deno.test("link types: an input of a type mcr cannot capture is in error, its rules never active", () => {
  const ok = statsOn(ARPHRD.NONE);
  assert.equal(ok.stats.interfaces[0].state, "running");
  assert.equal(ok.stats.rules[0].state, "active");
  for (const type of [ARPHRD.LOOPBACK, ARPHRD.INFINIBAND]) {
    const { state, stats } = statsOn(type);
    assert.equal(state.ruleState, "error");
    assert.equal(stats.interfaces[0].state, "error");
    assert.match(stats.interfaces[0].reason ?? "", /^input interface in0 is /);
    assert.equal(stats.rules[0].state, "error");
    assert.equal(stats.rules[0].reason, linkTypeProblem("input", "in0", type));
  }
});

/** A rule spec on in0 with outputs on `outs`. */
function spec(id: string, outs: string[]): RuleSpec {
  return {
    id,
    name: id,
    input: {
      interface: "in0",
      group: 0xef010101,
      prefixLen: 32,
      port: 5000,
      source: 0,
      vlan: -1,
      joins: [0xef010101],
    },
    outputs: outs.map((o) => ({
      interface: o,
      dst: 0xef0a0101,
      hostBits: 0,
      port: 6000,
      srcIp: 0,
      srcPort: 0,
      ttl: 1,
      tos: 0,
    })),
  };
}

Deno.test("link types: a rule with an output on a type mcr cannot send on is in error", () => {
  const links = new Map<string, LinkState>([
    ["eth1", up(ARPHRD.ETHER)],
    ["tun0", up(ARPHRD.NONE)],
    ["lo", up(ARPHRD.LOOPBACK)],
  ]);
  const types = new OutputLinkTypes((n) => links.get(n));
  const a = spec("a", ["eth1", "tun0"]), b = spec("b", ["eth1", "lo"]), c = spec("c", ["gre1"]);
  types.sync([a, b, c]);
  assert.deepEqual([...types.errors], [["b", linkTypeProblem("output", "lo", ARPHRD.LOOPBACK)]]);
  assert.deepEqual(types.takeChanged(), [["b", "in0"]]);
  assert.deepEqual(types.takeChanged(), [], "taken");

  // The stats show it as the rule's own error while its input forwards; its other output relays.
  const { stats } = statsOn(ARPHRD.ETHER, ["eth1", "lo"], types.errors, "b");
  assert.equal(stats.rules[0].state, "error");
  assert.match(stats.rules[0].reason ?? "", /output interface lo is loopback/);

  // gre1 appears as a GRE device: rule c is in error; re-created as a tun it is fine again.
  const tables: WorkerTable[] = [{
    version: 1,
    interface: "in0",
    rules: [a, b, c].map((r, k) => ({
      id: r.id,
      name: r.name,
      slot: k,
      group: r.input.group,
      prefixLen: r.input.prefixLen,
      port: r.input.port,
      source: 0,
      vlan: -1,
      outputs: r.outputs.map((o, j) => ({ ...o, slot: 10 * k + j })),
    })),
  }];
  links.set("gre1", up(ARPHRD.IPGRE));
  assert.equal(types.linkChanged({ name: "gre1", next: up(ARPHRD.IPGRE) }, tables), true);
  assert.match(types.errors.get("c") ?? "", /output interface gre1 is GRE/);
  assert.deepEqual(types.takeChanged(), [["c", "in0"]]);
  // flags changing on the same type decide nothing again
  assert.equal(
    types.linkChanged({ name: "gre1", prev: up(ARPHRD.IPGRE), next: up(ARPHRD.IPGRE) }, tables),
    false,
  );
  links.set("gre1", up(ARPHRD.NONE));
  assert.equal(
    types.linkChanged({ name: "gre1", prev: up(ARPHRD.IPGRE), next: up(ARPHRD.NONE) }, tables),
    true,
  );
  assert.equal(types.errors.has("c"), false);

  // A change removes b (its error goes) and adds d with an output on lo.
  types.change([spec("d", ["lo"])], [b]);
  assert.deepEqual([...types.errors.keys()], ["d"]);
  types.sync([a]);
  assert.equal(types.errors.size, 0, "a new rule set without them: no error left");
});

Deno.test("link types: rules' own errors from several sources, the first one's first", () => {
  const claims = new Map([["r1", "port 5000 in use"]]);
  const outputs = new Map([["r1", "output interface lo is loopback"], ["r2", "output gre"]]);
  const own = ruleErrorsOf(claims, outputs);
  assert.equal(own.size, 3);
  assert.equal(own.get("r1"), "port 5000 in use");
  assert.equal(own.get("r2"), "output gre");
  assert.equal(own.get("r3"), undefined);
  outputs.delete("r2");
  assert.equal(own.get("r2"), undefined, "a live view");
});
