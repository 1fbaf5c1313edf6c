/**
 * `deno bench` microbenchmarks of the relay's TypeScript hot loop (no FFI):
 * `BatchProcessor.process` on a synthetic batch of 256 frames against tables
 * of 1, 50 and 1000 exact rules and of 1000 ranges of mixed lengths (4
 * prefix lengths × exact/any port: up to 8 probes per datagram), and
 * `parseFrame` alone over the same frames; both again on a ring of a link
 * without a link-layer header (`/ip`: tun, WireGuard), where the frames are
 * the IPv4 packets alone; and over IPv6 (`/ipv6`: Ethernet/IPv6/UDP frames
 * against tables of IPv6 rules).
 * Each iteration handles one batch of `BATCH` frames; divide by `BATCH` for
 * ns/packet (`bench/hotloop_check.ts` does, and compares with the baseline).
 *
 *     deno bench bench/hotloop_bench.ts
 *
 * @module
 */
import {
  BATCH,
  hotloopFixture,
  hotloopFixture6,
  hotloopRangesFixture,
  RANGE_COUNTS,
  RULE_COUNTS,
} from "./lib/hotloop_fixture.ts";
import { ParsedPacket, parseFrame } from "../src/datapath/packet.ts";

for (const n of RULE_COUNTS) {
  const f = hotloopFixture(n);
  Deno.bench({
    name: `process/${n}-rules`,
    group: "process",
    baseline: n === 1,
    fn() {
      f.proc.process(f.ring, f.desc, BATCH, f.lookup, f.base, f.linkHeader);
    },
  });
}

for (const n of RANGE_COUNTS) {
  const f = hotloopRangesFixture(n);
  Deno.bench({
    name: `process/${n}-ranges`,
    group: "process",
    fn() {
      f.proc.process(f.ring, f.desc, BATCH, f.lookup, f.base, f.linkHeader);
    },
  });
}

{
  const f = hotloopFixture(1, "ip");
  Deno.bench({
    name: "process/1-rules/ip",
    group: "process",
    fn() {
      f.proc.process(f.ring, f.desc, BATCH, f.lookup, f.base, f.linkHeader);
    },
  });
}

for (const n of [1, 1000]) {
  const f = hotloopFixture6(n);
  Deno.bench({
    name: `process/${n}-rules/ipv6`,
    group: "process",
    fn() {
      f.proc.process(f.ring, f.desc, BATCH, f.lookup, f.base, f.linkHeader);
    },
  });
}

for (const layout of ["ethernet", "ip", "ipv6"] as const) {
  const f = layout === "ipv6" ? hotloopFixture6(1) : hotloopFixture(1, layout);
  const pkt = new ParsedPacket();
  const { ring, desc, linkHeader } = f;
  let sink = 0;
  Deno.bench({
    name: layout === "ethernet" ? "parseFrame" : `parseFrame/${layout}`,
    group: "parse",
    fn() {
      for (let i = 0; i < BATCH; i++) {
        const b = i * 8;
        sink += parseFrame(
          ring,
          desc[b],
          desc[b + 1],
          desc[b + 2],
          desc[b + 3],
          desc[b + 4],
          linkHeader,
          pkt,
        );
      }
      if (sink === 1) console.log(sink); // keep the result alive
    },
  });
}
