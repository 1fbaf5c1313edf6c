import assert from "node:assert/strict";
import fc from "fast-check";
import {
  Drop,
  DROP_COUNT,
  DROP_NAMES,
  ParsedPacket,
  parseFrame,
  TP_STATUS_VLAN_VALID,
} from "../../src/datapath/packet.ts";
import { ETH_HLEN } from "../../src/datapath/link_types.ts";
import { formatIPv4 } from "../../src/common/net.ts";
import {
  buildFrame,
  buildFrameInfo,
  fixIpChecksum,
  type FrameOptions,
  internetChecksum,
  ipv4Arb,
  packFrames,
  udpChecksum,
} from "../fixtures/frames.ts";

/** Parses a standalone frame (offset 0, not truncated). */
function parse(
  frame: Uint8Array,
  status = 0,
  tci = 0,
  out = new ParsedPacket(),
): { rc: number; out: ParsedPacket } {
  const rc = parseFrame(frame, 0, frame.length, frame.length, status, tci, ETH_HLEN, out);
  return { rc, out };
}

function rcOf(opts: FrameOptions, status = 0, tci = 0): number {
  return parse(buildFrame(opts), status, tci).rc;
}

Deno.test("Drop: names, count and codes are consistent", () => {
  assert.equal(DROP_COUNT, DROP_NAMES.length);
  for (const [name, code] of Object.entries(Drop)) assert.equal(DROP_NAMES[code], name);
  assert.deepEqual([...DROP_NAMES].sort(), Object.keys(Drop).sort());
  assert.equal(Drop.not_ipv4, 0);
  assert.equal(Drop.vlan, 9);
  assert.equal(Drop.bad_checksum, 14, "a new reason takes the next code (counters index by code)");
});

Deno.test("frames fixture: checksums are valid", () => {
  const info = buildFrameInfo({ ipOptions: [1, 1, 1, 0], payload: 33 });
  const f = info.frame;
  assert.equal(internetChecksum(f, info.l3Offset, info.l3Offset + info.ipHeaderLength), 0);
  const ulen = 8 + info.payloadLength;
  assert.equal(udpChecksum(info.src, info.dst, f, info.l4Offset, ulen), 0);
});

Deno.test("parseFrame: valid frame fills every field", () => {
  const info = buildFrameInfo({
    src: "192.168.1.20",
    dst: "239.255.1.2",
    sport: 12345,
    dport: 5004,
    ttl: 17,
    tos: 0xb8,
    payload: 100,
    df: true,
  });
  const { rc, out } = parse(info.frame);
  assert.equal(rc, -1);
  assert.equal(formatIPv4(out.src), "192.168.1.20");
  assert.equal(formatIPv4(out.dst), "239.255.1.2");
  assert.equal(out.dst, 0xefff0102);
  assert.ok(out.dst > 0, "addresses are unsigned");
  assert.equal(out.sport, 12345);
  assert.equal(out.dport, 5004);
  assert.equal(out.ttl, 17);
  assert.equal(out.tos, 0xb8);
  assert.equal(out.vlan, -1);
  assert.equal(out.l3Offset, 14);
  assert.equal(out.l4Offset, 34);
  assert.equal(out.payloadOffset, 42);
  assert.equal(out.payloadLength, 100);
  const f = info.frame;
  assert.equal(out.udpChecksum, (f[40] << 8) | f[41]);
  assert.notEqual(out.udpChecksum, 0);
});

Deno.test("parseFrame: zero-length payload is valid", () => {
  const { rc, out } = parse(buildFrame({ payload: 0 }));
  assert.equal(rc, -1);
  assert.equal(out.payloadLength, 0);
  assert.equal(out.payloadOffset, 42);
});

Deno.test("parseFrame: Ethernet padding after the datagram is ignored", () => {
  // 14 + 20 + 8 + 2 = 44 bytes, padded to the 60-byte minimum.
  const { rc, out } = parse(buildFrame({ payload: 2, padding: 16 }));
  assert.equal(rc, -1);
  assert.equal(out.payloadLength, 2);
});

Deno.test("parseFrame: UDP checksum 0 (none) is accepted", () => {
  const { rc, out } = parse(buildFrame({ override: { udpChecksum: 0 } }));
  assert.equal(rc, -1);
  assert.equal(out.udpChecksum, 0);
});

Deno.test("parseFrame: the UDP checksum is not verified (the output keeps it wrong)", () => {
  const f = buildFrame({ override: { udpChecksum: 0xbeef } });
  const { rc, out } = parse(f);
  assert.equal(rc, -1);
  assert.equal(out.udpChecksum, 0xbeef);
});

Deno.test("parseFrame: kernel-stripped VLAN tag", () => {
  const f = buildFrame({});
  let r = parse(f, TP_STATUS_VLAN_VALID, (5 << 13) | 100);
  assert.equal(r.rc, -1);
  assert.equal(r.out.vlan, 100);
  // Without VLAN_VALID the TCI is ignored.
  r = parse(f, 0, 100);
  assert.equal(r.rc, -1);
  assert.equal(r.out.vlan, -1);
  // Priority tag (VID 0) = untagged.
  r = parse(f, TP_STATUS_VLAN_VALID, 6 << 13);
  assert.equal(r.rc, -1);
  assert.equal(r.out.vlan, -1);
  r = parse(f, TP_STATUS_VLAN_VALID | 0x40, 4095);
  assert.equal(r.out.vlan, 4095);
});

Deno.test("parseFrame: in-band 802.1Q and 802.1ad tags", () => {
  const info = buildFrameInfo({ vlans: [{ vid: 42, pcp: 3, dei: true }], payload: 10 });
  const { rc, out } = parse(info.frame);
  assert.equal(rc, -1);
  assert.equal(out.vlan, 42);
  assert.equal(out.l3Offset, 18);
  assert.equal(out.payloadOffset, 18 + 28);
  assert.equal(out.payloadLength, 10);

  const ad = parse(buildFrame({ vlans: [{ vid: 7, tpid: 0x88a8 }] }));
  assert.equal(ad.rc, -1);
  assert.equal(ad.out.vlan, 7);

  const prio = parse(buildFrame({ vlans: [{ vid: 0, pcp: 5 }] }));
  assert.equal(prio.rc, -1);
  assert.equal(prio.out.vlan, -1);
});

Deno.test("parseFrame: two tag levels are dropped as vlan", () => {
  // QinQ in band.
  assert.equal(rcOf({ vlans: [{ vid: 10, tpid: 0x88a8 }, { vid: 20 }] }), Drop.vlan);
  assert.equal(rcOf({ vlans: [{ vid: 10 }, { vid: 20 }] }), Drop.vlan);
  // Stripped outer tag + in-band inner tag.
  assert.equal(rcOf({ vlans: [{ vid: 20 }] }, TP_STATUS_VLAN_VALID, 10), Drop.vlan);
  // Even under a stripped priority tag.
  assert.equal(rcOf({ vlans: [{ vid: 20 }] }, TP_STATUS_VLAN_VALID, 0), Drop.vlan);
});

Deno.test("parseFrame: IPv4 options are skipped", () => {
  // Router alert (4 bytes) + NOP padding, then a 3-byte record route stub.
  const info = buildFrameInfo({ ipOptions: [0x94, 4, 0, 0, 1, 1, 7, 3, 4], payload: 20 });
  assert.equal(info.ipHeaderLength, 32);
  const { rc, out } = parse(info.frame);
  assert.equal(rc, -1);
  assert.equal(out.l4Offset, 14 + 32);
  assert.equal(out.payloadOffset, 14 + 32 + 8);
  assert.equal(out.payloadLength, 20);
  assert.equal(out.dport, 5001);
  // Maximum IHL (15 words = 60 bytes).
  const max = parse(buildFrame({ ipOptions: new Array(40).fill(1) }));
  assert.equal(max.rc, -1);
  assert.equal(max.out.l4Offset, 14 + 60);
});

Deno.test("parseFrame: fragments of every kind", () => {
  assert.equal(rcOf({ mf: true }), Drop.fragment, "first fragment (MF only)");
  assert.equal(rcOf({ fragmentOffset: 185 }), Drop.fragment, "last fragment (offset only)");
  assert.equal(rcOf({ mf: true, fragmentOffset: 1 }), Drop.fragment, "middle fragment");
  assert.equal(rcOf({ mf: true, df: true }), Drop.fragment);
  assert.equal(rcOf({ fragmentOffset: 0x1fff }), Drop.fragment);
  // DF alone or the reserved bit alone is not a fragment.
  assert.equal(rcOf({ df: true }), -1);
  assert.equal(rcOf({ reservedFlag: true }), -1);
});

Deno.test("parseFrame: truncated by the ring slot", () => {
  const f = buildFrame({ payload: 200 });
  const out = new ParsedPacket();
  assert.equal(parseFrame(f, 0, 100, f.length, 0, 0, ETH_HLEN, out), Drop.truncated);
  assert.equal(parseFrame(f, 0, f.length - 1, f.length, 0, 0, ETH_HLEN, out), Drop.truncated);
  assert.equal(parseFrame(f, 0, f.length, f.length, 0, 0, ETH_HLEN, out), -1);
});

Deno.test("parseFrame: bad IPv4 header lengths are malformed", () => {
  for (const ihl of [0, 1, 4]) {
    assert.equal(rcOf({ override: { ihl } }), Drop.malformed, `IHL ${ihl}`);
  }
  // IHL beyond the frame: 60-byte header in a 14 + 20 + 8 + 0 byte frame.
  assert.equal(rcOf({ payload: 0, override: { ihl: 15 } }), Drop.malformed);
  // IHL inside the frame (checksum over the 28 bytes it claims) but the UDP header no longer
  // fits in the total length.
  const ihl7 = fixIpChecksum(buildFrame({ payload: 4, override: { ihl: 7 } }));
  assert.equal(parse(ihl7).rc, Drop.malformed);
});

Deno.test("parseFrame: bad IPv4 total length is malformed", () => {
  const info = buildFrameInfo({ payload: 10 });
  const total = 20 + 8 + 10;
  assert.equal(rcOf({ payload: 10, override: { totalLength: total + 1 } }), Drop.malformed);
  assert.equal(rcOf({ payload: 10, override: { totalLength: 0xffff } }), Drop.malformed);
  assert.equal(rcOf({ payload: 10, override: { totalLength: 27 } }), Drop.malformed);
  assert.equal(rcOf({ payload: 10, override: { totalLength: 0 } }), Drop.malformed);
  // Total length within the frame (padding) but then UDP length disagrees.
  assert.equal(rcOf({ payload: 10, padding: 4, override: { totalLength: total + 4 } }), 3);
  assert.equal(parse(info.frame).rc, -1);
});

Deno.test("parseFrame: UDP length disagreeing with the IPv4 length", () => {
  assert.equal(rcOf({ payload: 10, override: { udpLength: 17 } }), Drop.malformed);
  assert.equal(rcOf({ payload: 10, override: { udpLength: 19 } }), Drop.malformed);
  assert.equal(rcOf({ payload: 10, override: { udpLength: 7 } }), Drop.malformed);
  assert.equal(rcOf({ payload: 10, override: { udpLength: 0 } }), Drop.malformed);
  // IPv4 length shorter than the UDP length says (datagram in padding).
  assert.equal(
    rcOf({ payload: 10, padding: 10, override: { totalLength: 20 + 8 + 5 } }),
    Drop.malformed,
  );
});

Deno.test("parseFrame: wrong IP version is malformed", () => {
  assert.equal(rcOf({ override: { version: 6 } }), Drop.malformed);
  assert.equal(rcOf({ override: { version: 0 } }), Drop.malformed);
});

Deno.test("parseFrame: non-UDP protocols", () => {
  for (const protocol of [1, 2, 6, 47, 89, 132]) {
    assert.equal(rcOf({ protocol }), Drop.not_udp, `protocol ${protocol}`);
  }
  // A fragmented non-UDP packet is reported as not_udp (cheaper reason first).
  assert.equal(rcOf({ protocol: 6, mf: true }), Drop.not_udp);
});

Deno.test("parseFrame: ethertypes neither IPv4 nor IPv6", () => {
  for (const ethertype of [0x0806, 0x88cc, 0x8035, 0x05dc, 0x0026, 0x0600]) {
    assert.equal(rcOf({ ethertype }), Drop.not_ipv4, `ethertype ${ethertype.toString(16)}`);
  }
  // Real ARP frame length (42 bytes).
  const arp = buildFrame({ ethertype: 0x0806 }).subarray(0, 42);
  assert.equal(parse(arp).rc, Drop.not_ipv4);
  // The IPv6 ethertype goes to the IPv6 parser (packet6_test.ts), behind a VLAN tag too: IPv4
  // bytes under it are malformed.
  assert.equal(rcOf({ ethertype: 0x86dd }), Drop.malformed);
  assert.equal(rcOf({ vlans: [{ vid: 3 }], ethertype: 0x86dd }), Drop.malformed);
});

Deno.test("parseFrame: frames too short for their headers are malformed", () => {
  const f = buildFrame({});
  const out = new ParsedPacket();
  for (const len of [0, 1, 13, 14, 20, 33]) {
    const short = f.subarray(0, len);
    assert.equal(
      parseFrame(short, 0, len, len, 0, 0, ETH_HLEN, out),
      Drop.malformed,
      `length ${len}`,
    );
  }
  // Tag present but cut before its inner ethertype.
  const tagged = buildFrame({ vlans: [{ vid: 5 }] }).subarray(0, 16);
  assert.equal(parseFrame(tagged, 0, 16, 16, 0, 0, ETH_HLEN, out), Drop.malformed);
  // Descriptor pointing past the buffer never reads outside it.
  assert.equal(parseFrame(f, 10, f.length, f.length, 0, 0, ETH_HLEN, out), Drop.malformed);
  assert.equal(parseFrame(f, -1, 60, 60, 0, 0, ETH_HLEN, out), Drop.malformed);
});

Deno.test("parseFrame: frames at offsets inside a big ring buffer", () => {
  const optsList: FrameOptions[] = [
    { dst: "239.0.0.1", dport: 1, payload: 0 },
    { dst: "239.0.0.2", dport: 2, payload: 1400, vlans: [{ vid: 9 }] },
    { dst: "239.0.0.3", dport: 3, mf: true },
    { dst: "10.9.8.7", dport: 4, payload: 5, padding: 13 },
  ];
  const infos = optsList.map((o) => buildFrameInfo(o));
  const { buf, placed } = packFrames(infos.map((i) => i.frame));
  const out = new ParsedPacket();
  const rcs = placed.map((p) => parseFrame(buf, p.offset, p.length, p.length, 0, 0, ETH_HLEN, out));
  assert.deepEqual(rcs, [-1, -1, Drop.fragment, -1]);
  for (let i = 0; i < placed.length; i++) {
    if (rcs[i] !== -1) continue;
    assert.equal(
      parseFrame(buf, placed[i].offset, placed[i].length, placed[i].length, 0, 0, ETH_HLEN, out),
      -1,
    );
    assert.equal(out.dport, i + 1);
    assert.equal(out.dst, infos[i].dst);
    assert.equal(out.l3Offset, placed[i].offset + infos[i].l3Offset);
    assert.equal(out.payloadOffset, placed[i].offset + infos[i].payloadOffset);
    assert.equal(out.payloadLength, infos[i].payloadLength);
    assert.deepEqual(
      buf.subarray(out.payloadOffset, out.payloadOffset + out.payloadLength),
      infos[i].frame.subarray(infos[i].payloadOffset, infos[i].payloadOffset + out.payloadLength),
    );
  }
});

Deno.test("parseFrame: the output object is reused across frames", () => {
  const out = new ParsedPacket();
  const a = buildFrame({ vlans: [{ vid: 3 }], dport: 1 });
  const b = buildFrame({ dport: 2 });
  assert.equal(parse(a, 0, 0, out).rc, -1);
  assert.equal(out.vlan, 3);
  assert.equal(parse(b, 0, 0, out).rc, -1);
  assert.equal(out.vlan, -1, "vlan reset for an untagged frame");
  assert.equal(out.dport, 2);
});

Deno.test("property: random bytes never throw and give -1 or a Drop code", () => {
  const out = new ParsedPacket();
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 0, maxLength: 200 }),
      fc.nat(300),
      fc.nat(300),
      fc.nat(300),
      fc.integer({ min: 0, max: 0xff }),
      fc.integer({ min: 0, max: 0xffff }),
      (bytes, off, snap, wire, status, tci) => {
        const rc = parseFrame(bytes, off, snap, wire, status, tci, ETH_HLEN, out);
        return rc === -1 || (Number.isInteger(rc) && rc >= 0 && rc < DROP_COUNT);
      },
    ),
    { numRuns: 2000 },
  );
});

Deno.test("property: random bytes after a plausible header never throw", () => {
  // Bias towards reaching the deeper checks: Ethernet + IPv4 type, version 4.
  const out = new ParsedPacket();
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 34, maxLength: 120 }), fc.boolean(), (bytes, tag) => {
      const f = Uint8Array.from(bytes);
      let p = 12;
      if (tag) {
        f[12] = 0x81;
        f[13] = 0x00;
        p = 16;
      }
      f[p] = 0x08;
      f[p + 1] = 0x00;
      if (p + 2 < f.length) f[p + 2] = 0x40 | (f[p + 2] & 0x0f);
      if (p + 11 < f.length) f[p + 11] = 17;
      const rc = parseFrame(f, 0, f.length, f.length, 0, 0, ETH_HLEN, out);
      if (rc === -1) {
        assert.ok(out.payloadOffset + out.payloadLength <= f.length);
        assert.ok(out.payloadLength >= 0);
      }
      return rc === -1 || (rc >= 0 && rc < DROP_COUNT);
    }),
    { numRuns: 2000 },
  );
});

Deno.test("property: valid built frames parse back to their fields", () => {
  const out = new ParsedPacket();
  fc.assert(
    fc.property(
      fc.record({
        src: ipv4Arb,
        dst: ipv4Arb,
        sport: fc.integer({ min: 0, max: 65535 }),
        dport: fc.integer({ min: 0, max: 65535 }),
        ttl: fc.nat(255),
        tos: fc.nat(255),
        df: fc.boolean(),
        payload: fc.nat(1472),
        padding: fc.nat(40),
        optWords: fc.nat(10),
        vlan: fc.option(fc.integer({ min: 0, max: 4095 })),
        stripped: fc.option(fc.integer({ min: 0, max: 0xffff })),
        base: fc.nat(3000),
      }),
      (r) => {
        const vlans = r.vlan === null ? [] : [{ vid: r.vlan }];
        const info = buildFrameInfo({
          src: r.src,
          dst: r.dst,
          sport: r.sport,
          dport: r.dport,
          ttl: r.ttl,
          tos: r.tos,
          df: r.df,
          payload: r.payload,
          padding: r.padding,
          ipOptions: new Array(r.optWords * 4).fill(1),
          vlans,
        });
        const buf = new Uint8Array(r.base + info.frame.length + 7).fill(0xaa);
        buf.set(info.frame, r.base);
        const n = info.frame.length;
        const status = r.stripped === null ? 0 : TP_STATUS_VLAN_VALID;
        const rc = parseFrame(buf, r.base, n, n, status, r.stripped ?? 0, ETH_HLEN, out);
        if (r.stripped !== null && r.vlan !== null) {
          assert.equal(rc, Drop.vlan);
          return;
        }
        assert.equal(rc, -1);
        const vid = r.vlan ?? (r.stripped === null ? 0 : r.stripped & 0xfff);
        assert.equal(out.vlan, vid === 0 ? -1 : vid);
        assert.equal(formatIPv4(out.src), r.src);
        assert.equal(formatIPv4(out.dst), r.dst);
        assert.equal(out.sport, r.sport);
        assert.equal(out.dport, r.dport);
        assert.equal(out.ttl, r.ttl);
        assert.equal(out.tos, r.tos);
        assert.equal(out.l3Offset, r.base + info.l3Offset);
        assert.equal(out.l4Offset, r.base + info.l4Offset);
        assert.equal(out.payloadOffset, r.base + info.payloadOffset);
        assert.equal(out.payloadLength, r.payload);
        const f = info.frame;
        assert.equal(out.udpChecksum, (f[info.l4Offset + 6] << 8) | f[info.l4Offset + 7]);
      },
    ),
    { numRuns: 500 },
  );
});
