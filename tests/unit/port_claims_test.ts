/**
 * UDP port claims of unicast inputs (src/relay/port_claims.ts) against a
 * model of the kernel's bind rules (csrc/tests/test_claim.c and
 * tests/netns/unicast_test.ts check the real kernel): one claim per
 * (interface, address, port) whatever the number of rules sharing it,
 * released with the last; nothing for multicast inputs; an address that is
 * not the host's needs none; a missing interface is pending until it
 * appears; a re-created interface is claimed again on its new index; a
 * refusal is every sharing rule's error, with the reason, retried until it
 * holds; nothing left open.
 */
import assert from "node:assert/strict";
import { McrError } from "../../ffi/mod.ts";
import type { Links } from "../../src/relay/links.ts";
import { type ClaimSocket, PortClaims } from "../../src/relay/port_claims.ts";
import type { RuleSpec } from "../../src/relay/tables.ts";
import { isMulticast } from "../../src/common/net.ts";

const EADDRINUSE = 98, EADDRNOTAVAIL = 99, EACCES = 13;
const OWN = 0x0a000005, OTHER = 0x0a000009, GROUP = 0xef010101;

/** The kernel: the host's addresses, the ports other programs hold, the claims open. */
class Kernel {
  readonly local = new Set([OWN]);
  /** "addr:port" held by another program. */
  readonly busy = new Set<string>();
  readonly open = new Map<string, number>(); // "ifindex/addr:port" → open count
  privileged = false;

  claim = (ifindex: number, addr: number, port: number): ClaimSocket => {
    const fail = (errno: number) => {
      throw new McrError("mcr_udp_claim_open", -errno, `bind UDP ${addr}:${port} (model)`);
    };
    if (!this.local.has(addr)) fail(EADDRNOTAVAIL);
    if (this.busy.has(`${addr}:${port}`)) fail(EADDRINUSE);
    if (this.privileged && port < 1024) fail(EACCES);
    const key = `${ifindex}/${addr}:${port}`;
    if (this.open.has(key)) fail(EADDRINUSE);
    this.open.set(key, 1);
    let closed = false;
    return {
      close: () => {
        assert.equal(closed, false, "closed twice");
        closed = true;
        this.open.delete(key);
      },
    };
  };
}

function links(m: Map<string, number>): Links {
  return { get: (n: string) => (m.has(n) ? { ifindex: m.get(n)! } : undefined) } as Links;
}

function rule(id: string, ifname: string, group: number, port: number, source = 0): RuleSpec {
  const joins = isMulticast(group) ? [group] : [];
  const input = { interface: ifname, group, prefixLen: 32, port, source, vlan: -1, joins };
  return { id, name: id, input, outputs: [] };
}

Deno.test("port claims: one per unicast (interface, address, port), released with its last rule", () => {
  const k = new Kernel();
  const claims = new PortClaims(links(new Map([["eth0", 3], ["eth1", 4]])), { open: k.claim });
  const a = rule("a", "eth0", OWN, 5001), b = rule("b", "eth0", OWN, 5001, OTHER);
  const c = rule("c", "eth1", OWN, 5001), m = rule("m", "eth0", GROUP, 5001);
  claims.sync([a, b, c, m]);
  assert.deepEqual([...k.open.keys()].sort(), [`3/${OWN}:5001`, `4/${OWN}:5001`]);
  assert.deepEqual(claims.stats(), {
    claims: 2,
    held: 2,
    not_local: 0,
    pending: 0,
    failed: 0,
    failures: [],
  });
  claims.change([], [a]);
  assert.equal(k.open.size, 2, "b still needs eth0's claim");
  claims.change([], [b]);
  assert.deepEqual([...k.open.keys()], [`4/${OWN}:5001`]);
  claims.sync([m]);
  assert.equal(k.open.size, 0);
  assert.equal(claims.stats().claims, 0);
  claims.change([a], []);
  assert.deepEqual([...k.open.keys()], [`3/${OWN}:5001`]);
  claims.close();
  assert.equal(k.open.size, 0);
  assert.equal(claims.errors.size, 0);
});

Deno.test("port claims: another host's address (mirror port) needs none; held once it is the host's", () => {
  const k = new Kernel();
  const claims = new PortClaims(links(new Map([["eth0", 3]])), { open: k.claim });
  claims.sync([rule("mirror", "eth0", OTHER, 6000)]);
  assert.equal(k.open.size, 0);
  assert.deepEqual([claims.stats().not_local, claims.errors.size], [1, 0]);
  k.local.add(OTHER); // the address is added to the host
  claims.addressesChanged();
  assert.deepEqual([...k.open.keys()], [`3/${OTHER}:6000`]);
  assert.equal(claims.stats().held, 1);
  claims.close();
});

Deno.test("port claims: pending until the interface appears, claimed again when re-created", () => {
  const k = new Kernel();
  const ifs = new Map<string, number>();
  const claims = new PortClaims(links(ifs), { open: k.claim });
  claims.sync([rule("a", "eth0", OWN, 5001)]);
  assert.deepEqual([claims.stats().pending, k.open.size], [1, 0]);
  ifs.set("eth0", 3);
  claims.linkChanged("eth0");
  assert.deepEqual([...k.open.keys()], [`3/${OWN}:5001`]);
  ifs.set("eth0", 9); // deleted and created again
  claims.linkChanged("eth0");
  assert.deepEqual([...k.open.keys()], [`9/${OWN}:5001`], "nothing left on the old index");
  ifs.delete("eth0");
  claims.linkChanged("eth0");
  assert.deepEqual([claims.stats().pending, k.open.size], [1, 0]);
  claims.close();
});

Deno.test("port claims: a refusal is every sharing rule's error, with the reason, until a retry holds", async () => {
  const k = new Kernel();
  k.busy.add(`${OWN}:5001`);
  let changed = 0;
  const claims = new PortClaims(links(new Map([["eth0", 3]])), {
    open: k.claim,
    retryMs: 20,
    changed: () => changed++,
  });
  claims.sync([rule("a", "eth0", OWN, 5001), rule("b", "eth0", OWN, 5001, OTHER)]);
  const why = claims.errors.get("a") ?? "";
  assert.match(why, /^cannot claim UDP port 10\.0\.0\.5:5001 on eth0 /);
  assert.match(why, /another program has a socket bound to that port \(EADDRINUSE\)/);
  assert.match(why, /the rule still relays; tried again every 0\.02 s$/);
  assert.equal(claims.errors.get("b"), why);
  assert.deepEqual(claims.takeChanged().sort(), [["a", "eth0"], ["b", "eth0"]]);
  assert.deepEqual(claims.takeChanged(), []);
  const st = claims.stats();
  assert.deepEqual([st.failed, st.failures], [1, [{
    interface: "eth0",
    address: "10.0.0.5",
    port: 5001,
    reason: why,
  }]]);
  // A rule added to the failed claim gets the error too; a removed one loses it.
  claims.change([rule("c", "eth0", OWN, 5001, OTHER + 1)], [rule("b", "eth0", OWN, 5001)]);
  assert.deepEqual([...claims.errors.keys()].sort(), ["a", "c"]);
  assert.deepEqual(claims.takeChanged().sort(), [["b", "eth0"], ["c", "eth0"]]);
  // The other program lets go: the retry timer takes the port and clears the errors.
  k.busy.clear();
  for (let i = 0; i < 500 && claims.errors.size > 0; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(claims.errors.size, 0);
  assert.ok(changed > 0, "the supervisor was told");
  assert.deepEqual(claims.takeChanged().sort(), [["a", "eth0"], ["c", "eth0"]]);
  assert.deepEqual([...k.open.keys()], [`3/${OWN}:5001`]);
  claims.close();
  assert.equal(k.open.size, 0);
});

Deno.test("port claims: a privileged port without CAP_NET_BIND_SERVICE says so", () => {
  const k = new Kernel();
  k.privileged = true;
  const claims = new PortClaims(links(new Map([["eth0", 3]])), { open: k.claim });
  claims.sync([rule("dns", "eth0", OWN, 53)]);
  assert.match(
    claims.errors.get("dns") ?? "",
    /a port below net\.ipv4\.ip_unprivileged_port_start needs CAP_NET_BIND_SERVICE \(EACCES\)/,
  );
  claims.close();
});
