/**
 * The pcapng writer (client/pcapng.ts), byte by byte: every block starts
 * with its type and total length, ends with the same length, is a multiple
 * of 4 bytes; the Section Header Block's magic and version; the Interface
 * Description Block's link type, `if_name` and `if_tsresol` = 6; an Enhanced
 * Packet Block's interface, 64-bit microsecond time, captured and original
 * lengths and padded bytes. And, when tshark is installed, tshark reads a
 * file made of them back as written.
 */
import assert from "node:assert/strict";
import { findProgram } from "../../lab/netns.ts";
import {
  BlockType,
  BYTE_ORDER_MAGIC,
  enhancedPacket,
  interfaceDescription,
  OptionCode,
  sectionHeader,
} from "../../src/client/pcapng.ts";

const le = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

/** Check the framing of one block; returns its body (after type and length). */
function framing(b: Uint8Array, type: number): DataView {
  const d = le(b);
  assert.equal(d.getUint32(0, true), type);
  assert.equal(d.getUint32(4, true), b.length, "total length at the start");
  assert.equal(d.getUint32(b.length - 4, true), b.length, "total length at the end");
  assert.equal(b.length % 4, 0, "32-bit aligned");
  return d;
}

/** The options from `off` to the end marker: code → value. */
function options(b: Uint8Array, off: number): Map<number, Uint8Array> {
  const d = le(b);
  const out = new Map<number, Uint8Array>();
  for (;;) {
    const code = d.getUint16(off, true);
    const len = d.getUint16(off + 2, true);
    if (code === OptionCode.endOfOpt) {
      assert.equal(len, 0);
      assert.equal(off + 4, b.length - 4, "the end marker is the last thing before the length");
      return out;
    }
    out.set(code, b.slice(off + 4, off + 4 + len));
    off += 4 + ((len + 3) & ~3);
  }
}

Deno.test("pcapng: section header block", () => {
  const b = sectionHeader("mcr test");
  const d = framing(b, BlockType.section);
  assert.equal(d.getUint32(8, true), BYTE_ORDER_MAGIC);
  assert.equal(d.getUint16(12, true), 1);
  assert.equal(d.getUint16(14, true), 0);
  assert.equal(d.getBigInt64(16, true), -1n, "section length unknown");
  const o = options(b, 24);
  assert.equal(new TextDecoder().decode(o.get(OptionCode.shbUserAppl)), "mcr test");
});

Deno.test("pcapng: interface description block with if_name and if_tsresol = 6 (µs)", () => {
  for (const name of ["r0", "eth0.100", "abc"]) {
    const b = interfaceDescription({ linkType: 101, snapLen: 0, name });
    const d = framing(b, BlockType.interface);
    assert.equal(d.getUint16(8, true), 101);
    assert.equal(d.getUint16(10, true), 0);
    assert.equal(d.getUint32(12, true), 0);
    const o = options(b, 16);
    assert.equal(new TextDecoder().decode(o.get(OptionCode.ifName)), name);
    assert.deepEqual(o.get(OptionCode.ifTsresol), new Uint8Array([6]));
  }
});

Deno.test("pcapng: enhanced packet block: 64-bit µs time, lengths, padding", () => {
  const timeUs = 1_780_000_000_123_456;
  for (const n of [0, 1, 2, 3, 4, 5, 60, 1514]) {
    const data = Uint8Array.from({ length: n }, (_, i) => (i * 7 + 1) & 0xff);
    const b = enhancedPacket({ interfaceId: 2, timeUs, origLen: n + 10, data });
    const d = framing(b, BlockType.enhancedPacket);
    assert.equal(b.length, 32 + ((n + 3) & ~3), `length of a ${n}-byte frame's block`);
    assert.equal(d.getUint32(8, true), 2);
    assert.equal(d.getUint32(12, true) * 2 ** 32 + d.getUint32(16, true), timeUs);
    assert.equal(d.getUint32(20, true), n);
    assert.equal(d.getUint32(24, true), n + 10);
    assert.deepEqual(b.slice(28, 28 + n), data);
    assert.ok(b.slice(28 + n, b.length - 4).every((x) => x === 0), "zero padding");
  }
});

/** tshark's path, or null when it is not installed. */
const tshark = (): string | null => findProgram("tshark");

Deno.test({
  name: "pcapng: tshark reads the file as written (raw IP frames, µs times)",
  ignore: tshark() === null,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "mcr-pcapng-" });
    try {
      const pkt = (n: number) => {
        // an IPv4/UDP packet (LINKTYPE_RAW); tshark needs no valid checksum to show it
        const p = new Uint8Array(28 + n);
        p.set([0x45, 0, 0, 28 + n, 0, 1, 0, 0, 8, 17, 0, 0, 10, 0, 0, 1, 239, 1, 1, 1]);
        p.set([0x13, 0x89, 0x13, 0x89, 0, 8 + n, 0, 0], 20);
        for (let i = 0; i < n; i++) p[28 + i] = i;
        return p;
      };
      const t0 = 1_780_000_000_000_000;
      const blocks = [
        sectionHeader("mcr test"),
        interfaceDescription({ linkType: 101, snapLen: 0, name: "tun0" }),
        ...[3, 10, 33].map((n, k) =>
          enhancedPacket({ interfaceId: 0, timeUs: t0 + k * 1500, origLen: 28 + n, data: pkt(n) })
        ),
      ];
      const file = `${dir}/x.pcapng`;
      const all = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
      let o = 0;
      for (const b of blocks) {
        all.set(b, o);
        o += b.length;
      }
      await Deno.writeFile(file, all);
      const out = await new Deno.Command(tshark()!, {
        args: [
          "-r",
          file,
          "-T",
          "fields",
          "-E",
          "separator=,",
          "-e",
          "frame.time_epoch",
          "-e",
          "frame.len",
          "-e",
          "ip.dst",
          "-e",
          "frame.interface_name",
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      const rows = new TextDecoder().decode(out.stdout).trim().split("\n").map((l) => l.split(","));
      assert.equal(rows.length, 3);
      rows.forEach((r, k) => {
        assert.equal(Math.round(Number(r[0]) * 1e6), t0 + k * 1500, r[0]);
        assert.equal(Number(r[1]), 28 + [3, 10, 33][k]);
        assert.equal(r[2], "239.1.1.1");
        assert.equal(r[3], "tun0");
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
