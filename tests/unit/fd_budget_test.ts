/**
 * The file-descriptor budget (src/relay/fd_budget.ts): what a rule set
 * needs, by part, and what happens to RLIMIT_NOFILE — raised to the hard
 * limit when the need is above the soft one, refused with the limit named
 * when even the hard one is too low. The limit is changed in a child process
 * (Deno raises the soft limit to the hard one at start, so the child first
 * lowers it through libmcr).
 */
import assert from "node:assert/strict";
import {
  claimsNeeded,
  dataPathFds,
  estimateFds,
  FDS_HEADROOM,
  FDS_LINK_MONITOR,
  FDS_PER_RX_SET,
  FDS_PER_WORKER,
  igmpSocketsNeeded,
} from "../../src/relay/fd_budget.ts";
import type { RuleSpec } from "../../src/relay/tables.ts";
import { REPO } from "../../lab/netns.ts";
import { isMulticast } from "../../src/common/net.ts";

const MCAST = 0xef0a0001, UNICAST = 0x0a000005;

function rule(i: number, input: string, group: number, source: number, outs: [string, number][]) {
  return {
    id: `r${i}`,
    name: `r${i}`,
    input: {
      interface: input,
      group,
      prefixLen: 32,
      port: 5000 + i,
      source,
      vlan: -1,
      joins: isMulticast(group) ? [group] : [],
    },
    outputs: outs.map(([iface, dst], j) => ({
      interface: iface,
      dst,
      hostBits: 0,
      port: 6000 + j,
      srcIp: 0,
      srcPort: 0,
      ttl: 1,
      tos: 0,
    })),
  } satisfies RuleSpec;
}

Deno.test("fd budget: the pool's workers serve every shared input; dedicated workers one", () => {
  const rules = [
    rule(0, "eth0", 0xef010101, 0, [["eth1", MCAST], ["eth2", MCAST], ["eth1", UNICAST]]),
    rule(1, "eth0", 0xef010102, 0, [["eth1", MCAST]]),
    rule(2, "eth3", 0xef010103, 0, [["eth1", UNICAST], ["eth1", UNICAST + 1]]),
  ];
  const worker = FDS_PER_WORKER + FDS_PER_RX_SET;
  // eth0 dedicated: 2 workers × (RX + TX on eth1, eth2 + 1 unicast socket)
  // eth3 in a pool of 1: 1 worker × (RX + TX on eth1 + 2 unicast sockets)
  const want = 2 * (worker + 1 + 2 + 1) + 1 * (worker + 1 + 1 + 2);
  assert.equal(dataPathFds(rules, { interfaces: { eth0: { workers: 2 } } }), want);
  // cpus alone: one dedicated worker per CPU
  assert.equal(dataPathFds(rules, { interfaces: { eth0: { cpus: [0, 1] } } }), want);
  // a pool of 3 serving both: each worker has 2 RX rings, TX on eth1 and eth2, 3 unicast sockets
  assert.equal(dataPathFds(rules, { workers: 3 }), 3 * (worker + 2 + 2 + 3));
});

Deno.test("fd budget: IGMP sockets follow igmp_max_memberships and igmp_max_msf", () => {
  const limits = { maxMemberships: 20, maxMsf: 10, optmemMax: 131072 };
  const many = Array.from({ length: 65_536 }, (_, i) => rule(i, "eth0", 0xef000000 + i, 0, []));
  assert.equal(igmpSocketsNeeded(many, limits), 3277);
  assert.equal(igmpSocketsNeeded(many, { ...limits, maxMemberships: 1000 }), 66);
  // unreadable: the kernel's default (20)
  assert.equal(igmpSocketsNeeded(many, { ...limits, maxMemberships: null }), 3277);
  // one group, 25 sources at 10 per socket: 3 sockets, whatever the group limit
  const ssm = Array.from({ length: 25 }, (_, i) => rule(i, "eth0", 0xe8010101, 0x0a000001 + i, []));
  assert.equal(igmpSocketsNeeded(ssm, limits), 3);
  // the same group any-source too: a fourth entry, on a socket of its own
  assert.equal(igmpSocketsNeeded([...ssm, rule(99, "eth0", 0xe8010101, 0, [])], limits), 4);
  // several rules on one membership count once
  assert.equal(
    igmpSocketsNeeded([rule(0, "e", 0xef010101, 0, []), rule(1, "e", 0xef010101, 0, [])], {
      ...limits,
      maxMemberships: 1,
    }),
    1,
  );
  assert.equal(igmpSocketsNeeded([], limits), 0);
});

Deno.test("fd budget: the total adds the baseline, locks and the link monitor", () => {
  const rules = [
    rule(0, "eth0", 0xef010101, 0, [["eth1", MCAST]]),
    rule(1, "eth3", 0xef010102, 0, [["eth1", MCAST]]),
  ];
  const n = estimateFds(rules, {}, { maxMemberships: 1, maxMsf: 10, optmemMax: 1 }, 40);
  // one pool worker: 2 RX rings, one TX ring on eth1
  const dataPath = FDS_PER_WORKER + FDS_PER_RX_SET + 2 + 1;
  assert.deepEqual(n, {
    baseline: 40,
    dataPath,
    control: 2 + FDS_LINK_MONITOR,
    igmp: 2,
    mld: 0,
    claims: 0,
    total: 40 + dataPath + 2 + FDS_LINK_MONITOR + 2,
  });
});

Deno.test("fd budget: a unicast input needs a UDP port claim, not an IGMP socket", () => {
  const limits = { maxMemberships: 1, maxMsf: 10, optmemMax: 131072 };
  const rules = [
    rule(0, "eth0", 0xef010101, 0, [["eth1", MCAST]]),
    rule(1, "eth0", UNICAST, 0, [["eth1", MCAST]]),
    // another source or VLAN of the same address and port shares the claim
    { ...rule(1, "eth0", UNICAST, 0x0a000009, [["eth1", MCAST]]), id: "r1s" },
    rule(2, "eth3", UNICAST, 0, [["eth1", MCAST]]),
  ];
  assert.equal(igmpSocketsNeeded(rules, limits), 1, "only the multicast input joins");
  assert.equal(claimsNeeded(rules), 2, "(eth0, 10.0.0.5, 5001) and (eth3, 10.0.0.5, 5002)");
  const n = estimateFds(rules, {}, limits, 40);
  assert.equal(n.claims, 2);
  assert.equal(n.igmp, 1);
  assert.equal(n.total, n.baseline + n.dataPath + n.control + n.igmp + n.claims);
});

/** Run `code` in a child Deno with libmcr; returns its last stdout line as JSON. */
async function child(code: string): Promise<Record<string, unknown>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", code],
    env: { MCR_LIB: `${REPO}/build/libmcr.so` },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return JSON.parse(text.split("\n").pop()!);
}

const noLib = (() => {
  try {
    Deno.statSync(`${REPO}/build/libmcr.so`);
    return false;
  } catch {
    return true;
  }
})();

Deno.test({
  name: "fd budget: a need above the soft limit raises it to the hard one; above the hard: refused",
  ignore: noLib,
  async fn() {
    const r = await child(`
      import { fdLimits, setSoftFdLimit } from "${REPO}/ffi/mod.ts";
      import { ensureFdLimit, FdLimitError } from "${REPO}/src/relay/fd_budget.ts";
      const start = fdLimits();
      setSoftFdLimit(200);
      const need = (total) => ({ baseline: 30, dataPath: total - 30, control: 0, igmp: 0, claims: 0, total });
      // fits under the soft limit with the headroom: nothing to do
      const small = ensureFdLimit(need(200 - ${FDS_HEADROOM} - 1));
      const big = ensureFdLimit(need(300));
      const after = fdLimits();
      let refused = "";
      try { ensureFdLimit(need(start.hard + 1)); } catch (e) {
        refused = e instanceof FdLimitError ? e.message : "wrong error: " + e;
      }
      console.log(JSON.stringify({ start, small, big, after, refused }));
    `);
    const start = r.start as { soft: number; hard: number };
    const small = r.small as { raised: boolean; stats: { soft_limit: number } };
    const big = r.big as { raised: boolean; stats: Record<string, number> };
    const after = r.after as { soft: number; hard: number };
    assert.equal(small.raised, false);
    assert.equal(small.stats.soft_limit, 200);
    assert.equal(big.raised, true);
    assert.equal(big.stats.raised_from, 200);
    assert.equal(big.stats.soft_limit, start.hard);
    assert.equal(big.stats.needed, 300);
    assert.equal(after.soft, start.hard, "the process's soft limit is the hard limit now");
    assert.match(
      r.refused as string,
      new RegExp(
        `the configuration needs about ${start.hard + 1} file descriptors .*RLIMIT_NOFILE hard ` +
          `limit ${start.hard}\\): raise it .*ulimit -n .*LimitNOFILE=`,
      ),
    );
  },
});
