/**
 * `parseFrame` on the ring of a link without a link-layer header (tun,
 * WireGuard, ipip, PPP: link header length 0), where a frame is the IPv4
 * packet itself and the IP version nibble is the only protocol field:
 * every field as on Ethernet (offsets 14 lower), IPv6 and other versions
 * counted as `not_ipv4`, truncated headers as `malformed`, no VLAN, and the
 * hostile corpus (tests/fixtures/hostile) with its link header removed given
 * the verdicts the manifest gives its Ethernet frames.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { Drop, DROP_COUNT, ParsedPacket, parseFrame } from "../../src/datapath/packet.ts";
import { ETH_HLEN, LINK_HEADER } from "../../src/datapath/link_types.ts";
import { buildFrame, buildFrameInfo, ipv4Arb } from "../fixtures/frames.ts";
import type { Kind, Manifest } from "../fixtures/hostile/generate.ts";

/** The IPv4 packet of an Ethernet frame: what a tun ring holds. */
const packet = (frame: Uint8Array) => frame.slice(ETH_HLEN);

/** Parse `pkt` as a frame of an IP link (link header 0). */
function parseIp(pkt: Uint8Array, out = new ParsedPacket(), status = 0, tci = 0): number {
  return parseFrame(pkt, 0, pkt.length, pkt.length, status, tci, LINK_HEADER.ip, out);
}

Deno.test("IP link: the link header length of each layout", () => {
  assert.deepEqual(LINK_HEADER, { ethernet: 14, ip: 0 });
});

Deno.test("IP link: a packet parses to the Ethernet frame's fields, 14 bytes lower", () => {
  const info = buildFrameInfo({
    src: "10.78.0.2",
    dst: "239.1.1.1",
    sport: 40000,
    dport: 5001,
    ttl: 7,
    tos: 0xb8,
    ipOptions: [1, 1, 1, 0],
    payload: 100,
  });
  const eth = new ParsedPacket(), ip = new ParsedPacket();
  assert.equal(parseFrame(info.frame, 0, info.frame.length, info.frame.length, 0, 0, 14, eth), -1);
  assert.equal(parseIp(packet(info.frame), ip), -1);
  assert.deepEqual(
    { ...ip },
    {
      ...eth,
      l3Offset: eth.l3Offset - ETH_HLEN,
      l4Offset: eth.l4Offset - ETH_HLEN,
      payloadOffset: eth.payloadOffset - ETH_HLEN,
    },
  );
  assert.equal(ip.l3Offset, 0);
  assert.equal(ip.vlan, -1);
});

Deno.test("IP link: any version but 4 and 6 is not_ipv4; version 6 goes to the IPv6 parser", () => {
  const v4 = packet(buildFrame({ payload: 40 }));
  for (const version of [0, 1, 5, 7, 15]) {
    const p = Uint8Array.from(v4);
    p[0] = (version << 4) | (p[0] & 0x0f);
    assert.equal(parseIp(p), Drop.not_ipv4, `version ${version}`);
  }
  assert.equal(parseIp(v4.subarray(0, 1).map(() => 0x50)), Drop.not_ipv4, "one byte says enough");
  // Version 6, as a tun or WireGuard link carries it, is parsed as IPv6 (packet6_test.ts): a
  // fixed header with payload length 0 (a jumbogram's) or cut short is malformed.
  const v6 = new Uint8Array(48);
  v6[0] = 0x60;
  v6[6] = 17;
  assert.equal(parseIp(v6), Drop.malformed);
  assert.equal(parseIp(v6.subarray(0, 1)), Drop.malformed);
  // On Ethernet the ethertype says IPv4: a version other than 4 there is malformed.
  const eth = buildFrame({ payload: 40 });
  eth[ETH_HLEN] = 0x65;
  assert.equal(
    parseFrame(eth, 0, eth.length, eth.length, 0, 0, ETH_HLEN, new ParsedPacket()),
    Drop.malformed,
  );
});

Deno.test("IP link: an empty or truncated IPv4 header is malformed", () => {
  const p = packet(buildFrame({ payload: 40 }));
  for (let len = 0; len < 20; len++) {
    assert.equal(parseIp(p.subarray(0, len)), Drop.malformed, `length ${len}`);
  }
  assert.equal(parseIp(p.subarray(0, 27)), Drop.malformed, "no room for the UDP header");
  const out = new ParsedPacket();
  assert.equal(parseFrame(p, 0, 20, p.length, 0, 0, 0, out), Drop.truncated, "cut by the slot");
});

Deno.test("IP link: no VLAN; an Ethernet frame on an IP ring is not taken for IPv4", () => {
  const out = new ParsedPacket();
  assert.equal(parseIp(packet(buildFrame({})), out, 0x10, 100), -1);
  assert.equal(out.vlan, -1, "a VLAN status on an IP ring is ignored");
  // 01:00:5e:... (a multicast MAC) starts with version nibble 0
  assert.equal(parseIp(buildFrame({})), Drop.not_ipv4);
});

Deno.test("IP link, property: any valid packet parses as its Ethernet frame does", () => {
  const eth = new ParsedPacket(), ip = new ParsedPacket();
  fc.assert(
    fc.property(
      fc.record({
        src: ipv4Arb,
        dst: ipv4Arb,
        dport: fc.integer({ min: 0, max: 65535 }),
        ttl: fc.nat(255),
        payload: fc.nat(1472),
        padding: fc.nat(40),
        optWords: fc.nat(10),
        base: fc.nat(3000),
      }),
      (r) => {
        const info = buildFrameInfo({
          src: r.src,
          dst: r.dst,
          dport: r.dport,
          ttl: r.ttl,
          payload: r.payload,
          padding: r.padding,
          ipOptions: new Array(r.optWords * 4).fill(1),
        });
        const p = packet(info.frame);
        const buf = new Uint8Array(r.base + p.length + 7).fill(0xaa);
        buf.set(p, r.base);
        const n = info.frame.length;
        assert.equal(parseFrame(info.frame, 0, n, n, 0, 0, ETH_HLEN, eth), -1);
        assert.equal(parseFrame(buf, r.base, p.length, p.length, 0, 0, 0, ip), -1);
        const shift = r.base - ETH_HLEN;
        assert.deepEqual({ ...ip }, {
          ...eth,
          l3Offset: eth.l3Offset + shift,
          l4Offset: eth.l4Offset + shift,
          payloadOffset: eth.payloadOffset + shift,
        });
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("IP link, property: random bytes never throw and give -1 or a Drop code", () => {
  const out = new ParsedPacket();
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 0, maxLength: 120 }),
      fc.boolean(),
      fc.nat(130),
      (bytes, v4, snap) => {
        const p = Uint8Array.from(bytes);
        if (v4 && p.length > 9) {
          p[0] = 0x40 | (p[0] & 0x0f);
          p[9] = 17;
        }
        const rc = parseFrame(p, 0, Math.min(snap, p.length), p.length, 0, 0, 0, out);
        if (rc === -1) assert.ok(out.payloadOffset + out.payloadLength <= p.length);
        return rc === -1 || (Number.isInteger(rc) && rc >= 0 && rc < DROP_COUNT);
      },
    ),
    { numRuns: 2000 },
  );
});

const DIR = new URL("../fixtures/hostile/", import.meta.url);
const manifest: Manifest = JSON.parse(Deno.readTextFileSync(new URL("manifest.json", DIR)));

/** The frames of a classic pcap file (little-endian, as generate.ts writes them). */
function pcapFrames(bytes: Uint8Array): Uint8Array[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  assert.equal(dv.getUint32(0, true), 0xa1b2c3d4, "a little-endian pcap");
  const frames: Uint8Array[] = [];
  for (let off = 24; off < bytes.length;) {
    const incl = dv.getUint32(off + 8, true);
    frames.push(bytes.subarray(off + 16, off + 16 + incl));
    off += 16 + incl;
  }
  return frames;
}

/**
 * The verdict for a hostile kind's frame once its Ethernet header is gone, or undefined when
 * such a packet cannot exist on an IP link (VLAN tags). `no_match` and `forwarded` datagrams
 * parse (the matcher decides them). Without an ethertype the IP version is the protocol field:
 * an IPv4 ethertype over version 6 is malformed on Ethernet, and an IPv6 packet too short for
 * its fixed header on an IP link; IPv6 frames get the verdicts they get on Ethernet.
 */
function ipLinkVerdict(k: Kind, frame: Uint8Array): number | undefined {
  const type = (frame[12] << 8) | frame[13];
  if (type === 0x8100 || type === 0x88a8) return undefined;
  if (type === 0x86dd) return k.expect === "no_match" ? -1 : Drop[k.expect as keyof typeof Drop];
  if (type !== 0x0800) {
    return frame.length > ETH_HLEN && frame[ETH_HLEN] >> 4 === 4 ? undefined : Drop.not_ipv4;
  }
  if (k.name === "ip_version_6") return Drop.malformed;
  if (k.expect === "forwarded" || k.expect === "no_match") return -1;
  return Drop[k.expect as keyof typeof Drop];
}

Deno.test("IP link: the hostile corpus, link header removed, gets the manifest's verdicts", () => {
  const out = new ParsedPacket();
  let checked = 0;
  for (const k of manifest.kinds) {
    const frames = pcapFrames(Deno.readFileSync(new URL(`${k.name}.pcap`, DIR)));
    assert.ok(frames.length > 0, k.name);
    for (const f of frames) {
      const want = ipLinkVerdict(k, f);
      if (want === undefined) continue;
      assert.equal(parseIp(packet(f), out), want, `${k.name}: ${k.description}`);
      checked++;
    }
  }
  assert.ok(checked >= 65, `most of the corpus applies to IP links (${checked} frames)`);
});
