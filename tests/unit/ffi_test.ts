/**
 * libmcr handles from TypeScript: every wrapper kind is opened and closed and
 * the C live-object counter (`liveObjects()`, an atomic in libmcr) returns to
 * zero after each, including failed opens, double closes and `using`
 * disposal. Deno's resource sanitizer does not see FFI handles, so this is the
 * leak check for the TS side. setThreadNice acts on the calling thread only.
 *
 * Waker and Forwarder (with a socket template) run anywhere; the AF_PACKET
 * rings and IGMP memberships need root and run in a child process inside a
 * fresh network namespace (skipped without root).
 */
import assert from "node:assert/strict";
import { Forwarder, ifaceByName, liveObjects, setThreadNice, Waker } from "../../ffi/mod.ts";
import { McrError } from "../../ffi/errors.ts";
import { REPO, skipReason, Topology } from "../../lab/netns.ts";

let loaded = true;
try {
  liveObjects();
} catch {
  loaded = false;
}
const noLib = loaded ? null : "libmcr not built (run `deno task build`)";

Deno.test({ name: "ffi: Waker open/close returns the live count to 0", ignore: !!noLib }, () => {
  const base = liveObjects();
  assert.equal(base, 0, "no handle leaked by earlier tests");
  const ws = Array.from({ length: 8 }, () => new Waker());
  assert.equal(liveObjects(), 8);
  ws[0].wake();
  for (const w of ws) w.close();
  ws[1].close(); // idempotent
  assert.equal(liveObjects(), 0);
  {
    using w = new Waker();
    w.wake();
    assert.equal(liveObjects(), 1);
  }
  assert.equal(liveObjects(), 0, "`using` disposes");
});

Deno.test(
  { name: "ffi: Forwarder with a socket template open/close, failed opens", ignore: !!noLib },
  () => {
    assert.equal(liveObjects(), 0);
    const lo = ifaceByName("lo");
    const f = new Forwarder(16, 64);
    assert.equal(liveObjects(), 1);
    f.setTemplate(0, {
      kind: "socket",
      ifindex: lo.ifindex,
      srcIp: 0,
      dstIp: 0x7f000001,
      srcPort: 0,
      dstPort: 9,
      ttl: 4,
      tos: 0,
    });
    f.setTemplate(0, null);
    f.close();
    f.close();
    assert.equal(liveObjects(), 0);
    // failed opens allocate nothing that outlives them
    assert.throws(() => new Forwarder(0, 0), McrError);
    assert.throws(() => new Forwarder(1 << 21, 1), McrError);
    assert.equal(liveObjects(), 0, "failed opens leave no live object");
    // a template that cannot be installed leaves the forwarder closable
    {
      using g = new Forwarder(4, 4);
      assert.throws(() =>
        g.setTemplate(9, {
          kind: "socket",
          ifindex: lo.ifindex,
          srcIp: 0,
          dstIp: 0x7f000001,
          srcPort: 0,
          dstPort: 9,
          ttl: 1,
          tos: 0,
        })
      );
    }
    assert.equal(liveObjects(), 0);
  },
);

/** Nice value (field 19 of /proc/.../stat) of one thread. */
function niceOf(statPath: string): number {
  const stat = Deno.readTextFileSync(statPath);
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
}

/** Runs in a Deno Worker: lowers its own thread's priority and reports its nice value. */
const NICE_WORKER = `
import { setThreadNice, threadNice } from "${new URL("../../ffi/mod.ts", import.meta.url).href}";
const nice = (p) => { const s = Deno.readTextFileSync(p); return Number(s.slice(s.lastIndexOf(")") + 2).split(" ")[16]); };
const before = nice("/proc/thread-self/stat");
const target = Math.min(before + 3, 19); // raising nice (lowering priority) needs no privilege
const read = threadNice();
setThreadNice(target);
self.postMessage({ target, before, read, after: nice("/proc/thread-self/stat"), readAfter: threadNice() });
`;

Deno.test(
  {
    name:
      "ffi: setThreadNice changes the calling thread only, threadNice reads it; out of range is EINVAL",
    ignore: !!noLib,
  },
  async () => {
    const main = `/proc/self/task/${Deno.pid}/stat`;
    const mainBefore = niceOf(main);
    const url = URL.createObjectURL(new Blob([NICE_WORKER], { type: "text/javascript" }));
    const w = new Worker(url, { type: "module" });
    try {
      const r = await new Promise<
        { target: number; before: number; read: number; after: number; readAfter: number }
      >((resolve, reject) => {
        w.onmessage = (e) => resolve(e.data);
        w.onerror = (e) => {
          e.preventDefault();
          reject(new Error(e.message));
        };
      });
      assert.equal(r.after, r.target, "the worker's thread took the new nice value");
      assert.equal(r.read, r.before, "threadNice reads the thread's nice value");
      assert.equal(r.readAfter, r.target, "threadNice reads the new nice value");
    } finally {
      w.terminate();
      URL.revokeObjectURL(url);
    }
    assert.equal(niceOf(main), mainBefore, "the main thread's priority is unchanged");
    for (const bad of [-21, 20]) {
      assert.throws(
        () => setThreadNice(bad),
        (e: unknown) => e instanceof McrError && e.code === "EINVAL",
        String(bad),
      );
    }
    assert.equal(niceOf(main), mainBefore);
  },
);

/** Runs in the child (inside a namespace): every kind, printing the count after each step. */
const CHILD = `
import { Forwarder, IgmpSocket, ifaceByName, liveObjects, RxRing, TxRing, Waker } from "${REPO}/ffi/mod.ts";
const steps = [];
const note = (what) => steps.push([what, liveObjects()]);
note("start");
const v = ifaceByName("v0");
const w = new Waker();
const rx = new RxRing({ ifindex: v.ifindex, wakeFd: w.fd, uniqueFanoutId: true });
note("rx");
rx.poll(0); rx.release(); rx.stats();
const rx3 = new RxRing({ ifindex: v.ifindex, tpacketVersion: 3, fanout: "hash", uniqueFanoutId: true });
note("rx3");
const tx = new TxRing({ ifindex: v.ifindex, frameCount: 64 });
note("tx");
const f = new Forwarder(8, 64);
f.setTemplate(0, { kind: "ring", ifindex: v.ifindex, srcIp: 0x0a000001, dstIp: 0xef010101,
  srcPort: 0, dstPort: 5001, ttl: 1, tos: 0, dstMac: new Uint8Array([1,0,0x5e,1,1,1]),
  srcMac: new Uint8Array(v.mac ?? [2,0,0,0,0,1]), tx });
note("fwd");
const m = new IgmpSocket();
m.add(v.ifindex, 0xef010101);
m.add(v.ifindex, 0xe8010101, 0x0a000005); // one socket holds both
note("igmp");
let failed = 0;
try { new RxRing({ ifindex: 999999 }); } catch { failed++; }
try { new TxRing({ ifindex: 999999 }); } catch { failed++; }
note("failed-opens");
m.drop(v.ifindex, 0xe8010101, 0x0a000005); m.close();
f.setTemplate(0, null); f.close();
tx.close(); rx3.close(); rx.close(); w.close();
rx.close(); tx.close(); f.close(); m.close(); w.close(); // idempotent
note("closed");
console.log(JSON.stringify({ steps, failed }));
`;

Deno.test({
  name: "ffi: RX/TX rings, ring templates, IGMP sockets return the live count to 0 (root)",
  ignore: !!noLib || skipReason() !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const t = new Topology("ffi");
    try {
      await t.addNs("x");
      await t.exec("x", ["ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
      await t.exec("x", ["ip", "link", "set", "v0", "up"]);
      await t.exec("x", ["ip", "link", "set", "v1", "up"]);
      await t.exec("x", ["ip", "addr", "add", "10.0.0.1/24", "dev", "v0"]);
      const out = await new Deno.Command("ip", {
        args: ["netns", "exec", t.ns("x"), Deno.execPath(), "eval", "--ext=ts", CHILD],
        env: { MCR_LIB: `${REPO}/build/libmcr.so` },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, stderr);
      const r = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!);
      const counts = Object.fromEntries(r.steps as [string, number][]);
      assert.equal(counts.start, 0);
      assert.equal(counts.rx, 2, "waker + rx");
      assert.equal(counts.rx3, 3);
      assert.equal(counts.tx, 4);
      assert.equal(counts.fwd, 5);
      assert.equal(counts.igmp, 6, "one IGMP socket for two memberships");
      assert.equal(r.failed, 2);
      assert.equal(counts["failed-opens"], 6, "failed opens leave no live object");
      assert.equal(counts.closed, 0, "every handle closed");
    } finally {
      await t.destroy();
    }
  },
});
