/**
 * The IPv4 header checksum check of `parseFrame` (src/datapath/packet.ts):
 * every header length passes when valid; a damaged header — one flipped bit
 * in any byte, options included, a zero checksum, a tag in front — is dropped
 * as `bad_checksum` whatever the damage makes it look like; the version and
 * IHL are judged first and the lengths after, as the kernel does.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { Drop, ParsedPacket, parseFrame, TP_STATUS_VLAN_VALID } from "../../src/datapath/packet.ts";
import { ETH_HLEN } from "../../src/datapath/link_types.ts";
import {
  buildFrame,
  buildFrameInfo,
  fixIpChecksum,
  type FrameOptions,
  ipv4Arb,
} from "../fixtures/frames.ts";

/** Parses a standalone frame (offset 0, not truncated). */
function parse(frame: Uint8Array, status = 0, tci = 0): number {
  return parseFrame(
    frame,
    0,
    frame.length,
    frame.length,
    status,
    tci,
    ETH_HLEN,
    new ParsedPacket(),
  );
}

function rcOf(opts: FrameOptions): number {
  return parse(buildFrame(opts));
}

Deno.test("parseFrame: a valid IPv4 header checksum passes at every header length", () => {
  for (let words = 0; words <= 10; words++) {
    const info = buildFrameInfo({ ipOptions: new Array(words * 4).fill(1), payload: 7 });
    assert.equal(info.ipHeaderLength, 20 + 4 * words);
    assert.equal(parse(info.frame), -1, `${info.ipHeaderLength}-byte header`);
    const tagged = buildFrame({ ipOptions: new Array(words * 4).fill(1), vlans: [{ vid: 9 }] });
    assert.equal(parse(tagged), -1, `${info.ipHeaderLength}-byte header behind a tag`);
  }
});

Deno.test("parseFrame: a wrong IPv4 header checksum is dropped as bad_checksum", () => {
  assert.equal(rcOf({ override: { ipChecksum: 0x1234 } }), Drop.bad_checksum);
  // IPv4 has no "no checksum" value (unlike UDP's 0).
  assert.equal(rcOf({ override: { ipChecksum: 0 } }), Drop.bad_checksum);
  // Under a kernel-stripped tag and an in-band one alike.
  const f = buildFrame({ override: { ipChecksum: 0x1234 } });
  assert.equal(parse(f, TP_STATUS_VLAN_VALID, 100), Drop.bad_checksum);
  assert.equal(rcOf({ vlans: [{ vid: 100 }], override: { ipChecksum: 1 } }), Drop.bad_checksum);
});

Deno.test("parseFrame: one flipped bit in any IPv4 header byte, options included, is dropped", () => {
  const headers: FrameOptions[] = [
    {},
    { ipOptions: [0x94, 4, 0, 0, 1, 1, 7, 3, 4] }, // router alert + NOPs + a stub: IHL 8
    { ipOptions: new Array(40).fill(1) }, // IHL 15
  ];
  for (const opts of headers) {
    const info = buildFrameInfo({ ...opts, payload: 64 });
    const l3 = info.l3Offset, hlen = info.ipHeaderLength;
    const avail = info.frame.length - l3;
    for (let byte = 0; byte < hlen; byte++) {
      for (let bit = 0; bit < 8; bit++) {
        const f = info.frame.slice();
        f[l3 + byte] ^= 1 << bit;
        let want: number = Drop.bad_checksum;
        if (byte === 0) {
          // The version and IHL are checked before the checksum (as the kernel does): a header
          // that is no longer IPv4, or whose length is impossible, is malformed.
          const ihl = f[l3] & 0x0f;
          if (bit >= 4 || ihl < 5 || ihl * 4 > avail) want = Drop.malformed;
        }
        assert.equal(parse(f), want, `IHL ${hlen / 4}: byte ${byte} bit ${bit}`);
      }
    }
    assert.equal(parse(info.frame), -1, "the unflipped frame still parses");
  }
});

Deno.test("parseFrame: a corrupted header is bad_checksum whatever it now looks like", () => {
  const info = buildFrameInfo({ dst: "239.1.1.3", payload: 40 });
  const flip = (at: number, mask: number) => {
    const f = info.frame.slice();
    f[info.l3Offset + at] ^= mask;
    return parse(f);
  };
  assert.equal(flip(19, 0x02), Drop.bad_checksum, "239.1.1.3 corrupted into 239.1.1.1");
  assert.equal(flip(9, 0x01), Drop.bad_checksum, "UDP (17) corrupted into 16: not not_udp");
  assert.equal(flip(6, 0x20), Drop.bad_checksum, "MF set by corruption: not fragment");
  assert.equal(flip(2, 0x01), Drop.bad_checksum, "total length changed: not malformed");
  assert.equal(flip(8, 0x40), Drop.bad_checksum, "TTL changed");
  // A header whose checksum matches what it says is judged on its fields.
  const odd = buildFrame({ payload: 4, override: { ihl: 7 } });
  assert.equal(parse(odd), Drop.bad_checksum, "checksum computed over 20 of 28 bytes");
  assert.equal(parse(fixIpChecksum(odd)), Drop.malformed, "then the UDP header does not fit");
});

Deno.test("property: any change to one IPv4 header byte after the first is bad_checksum", () => {
  const out = new ParsedPacket();
  fc.assert(
    fc.property(
      fc.record({
        src: ipv4Arb,
        dst: ipv4Arb,
        ttl: fc.nat(255),
        tos: fc.nat(255),
        id: fc.nat(0xffff),
        df: fc.boolean(),
        payload: fc.nat(600),
        optWords: fc.nat(10),
        optByte: fc.nat(255),
        vlan: fc.option(fc.integer({ min: 1, max: 4095 })),
        stripped: fc.boolean(),
        at: fc.nat(59),
        mask: fc.integer({ min: 1, max: 255 }),
      }),
      (r) => {
        const info = buildFrameInfo({
          src: r.src,
          dst: r.dst,
          ttl: r.ttl,
          tos: r.tos,
          id: r.id,
          df: r.df,
          payload: r.payload,
          ipOptions: new Array(r.optWords * 4).fill(r.optByte),
          vlans: r.vlan === null || r.stripped ? [] : [{ vid: r.vlan }],
        });
        const status = r.vlan !== null && r.stripped ? TP_STATUS_VLAN_VALID : 0;
        const tci = r.vlan ?? 0;
        const f = info.frame;
        const n = f.length;
        assert.equal(parseFrame(f, 0, n, n, status, tci, ETH_HLEN, out), -1, "intact header");
        // Bytes 1 .. IHL*4-1: byte 0 (version, IHL) is checked before the checksum.
        const at = info.l3Offset + 1 + (r.at % (info.ipHeaderLength - 1));
        f[at] ^= r.mask;
        assert.equal(parseFrame(f, 0, n, n, status, tci, ETH_HLEN, out), Drop.bad_checksum);
      },
    ),
    { numRuns: 1000 },
  );
});
