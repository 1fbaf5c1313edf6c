/**
 * A small pcapng writer (the file format of Wireshark and tshark,
 * draft-ietf-opsawg-pcapng): what `mcr ctl capture` writes. No npm package
 * writes pcapng (checked with `npm view`), and the three blocks a capture
 * needs are short:
 *
 * - a Section Header Block ({@link sectionHeader}): byte order, version,
 *   the writing application;
 * - an Interface Description Block per interface ({@link interfaceDescription}):
 *   its LINKTYPE (1: Ethernet, 101: raw IP, for links without a link-layer
 *   header), snap length, name, and a time resolution of microseconds;
 * - an Enhanced Packet Block per frame ({@link enhancedPacket}): the
 *   interface, the time, the captured and the original length, the bytes.
 *
 * Every block is written little-endian (the byte-order magic tells readers),
 * is a multiple of 4 bytes long (bodies and option values are padded with
 * zeros), and carries its total length at its start and at its end.
 *
 * @module
 */

/** Block types. */
export const BlockType = {
  /** Section Header Block. */
  section: 0x0a0d0d0a,
  /** Interface Description Block. */
  interface: 0x00000001,
  /** Enhanced Packet Block. */
  enhancedPacket: 0x00000006,
} as const;

/** The byte-order magic of a Section Header Block. */
export const BYTE_ORDER_MAGIC = 0x1a2b3c4d;
/** pcapng version written: 1.0. */
export const PCAPNG_MAJOR = 1;
/** Minor version. */
export const PCAPNG_MINOR = 0;

/** Option codes. */
export const OptionCode = {
  /** End of the options. */
  endOfOpt: 0,
  /** Section Header Block: the application that wrote the file. */
  shbUserAppl: 4,
  /** Interface Description Block: the interface's name. */
  ifName: 2,
  /** Interface Description Block: time resolution (6: 10^-6 s, microseconds). */
  ifTsresol: 9,
} as const;

/** `if_tsresol` for microseconds (10^-6 s). */
export const TSRESOL_MICROSECONDS = 6;

/** Bytes of a block's type and first length word. */
const BLOCK_HEAD = 8;
/** Bytes of a block's trailing length word. */
const BLOCK_TAIL = 4;
/** Bytes of an option's code and length. */
const OPT_HEAD = 4;
/** Fixed body of a Section Header Block: magic, major, minor, section length. */
const SHB_FIXED = 16;
/** Fixed body of an Interface Description Block: link type, reserved, snap length. */
const IDB_FIXED = 8;
/** Fixed body of an Enhanced Packet Block: interface, time high and low, captured and original lengths. */
const EPB_FIXED = 20;
/** 2^32, to split a 64-bit time into its two words. */
const TWO_32 = 2 ** 32;

const enc = new TextEncoder();

/** `n` rounded up to a multiple of 4. */
export function pad4(n: number): number {
  return (n + 3) & ~3;
}

/** An option: code, length, value padded to 4. */
interface Opt {
  code: number;
  value: Uint8Array;
}

/** Bytes the options take, the end-of-options marker included (none: 0). */
function optionsLength(opts: Opt[]): number {
  if (opts.length === 0) return 0;
  return opts.reduce((n, o) => n + OPT_HEAD + pad4(o.value.length), 0) + OPT_HEAD;
}

/** Write `opts` and the end marker at `off` of `d`; returns the offset after them. */
function writeOptions(d: DataView, bytes: Uint8Array, off: number, opts: Opt[]): number {
  if (opts.length === 0) return off;
  for (const o of opts) {
    d.setUint16(off, o.code, true);
    d.setUint16(off + 2, o.value.length, true);
    bytes.set(o.value, off + OPT_HEAD);
    off += OPT_HEAD + pad4(o.value.length);
  }
  d.setUint16(off, OptionCode.endOfOpt, true);
  d.setUint16(off + 2, 0, true);
  return off + OPT_HEAD;
}

/** A block of `type` with a body of `bodyLen` bytes that `fill` writes (from offset 8). */
function block(
  type: number,
  bodyLen: number,
  fill: (d: DataView, bytes: Uint8Array) => void,
): Uint8Array {
  const total = BLOCK_HEAD + pad4(bodyLen) + BLOCK_TAIL;
  const bytes = new Uint8Array(total);
  const d = new DataView(bytes.buffer);
  d.setUint32(0, type, true);
  d.setUint32(4, total, true);
  fill(d, bytes);
  d.setUint32(total - BLOCK_TAIL, total, true);
  return bytes;
}

/** A Section Header Block naming the writing application `app`; the section length is unknown (-1). */
export function sectionHeader(app: string): Uint8Array {
  const opts: Opt[] = [{ code: OptionCode.shbUserAppl, value: enc.encode(app) }];
  return block(BlockType.section, SHB_FIXED + optionsLength(opts), (d, bytes) => {
    d.setUint32(8, BYTE_ORDER_MAGIC, true);
    d.setUint16(12, PCAPNG_MAJOR, true);
    d.setUint16(14, PCAPNG_MINOR, true);
    d.setBigInt64(16, -1n, true);
    writeOptions(d, bytes, BLOCK_HEAD + SHB_FIXED, opts);
  });
}

/** An interface of a section. */
export interface PcapngInterface {
  /** LINKTYPE (1: Ethernet, 101: raw IP). */
  linkType: number;
  /** Largest captured length (0: no limit). */
  snapLen: number;
  /** Interface name. */
  name: string;
}

/**
 * An Interface Description Block with `if_name` and `if_tsresol` = 6
 * (times in microseconds). Interfaces are numbered from 0 in the order of
 * their blocks in a section.
 */
export function interfaceDescription(i: PcapngInterface): Uint8Array {
  const opts: Opt[] = [
    { code: OptionCode.ifName, value: enc.encode(i.name) },
    { code: OptionCode.ifTsresol, value: new Uint8Array([TSRESOL_MICROSECONDS]) },
  ];
  return block(BlockType.interface, IDB_FIXED + optionsLength(opts), (d, bytes) => {
    d.setUint16(8, i.linkType, true);
    d.setUint16(10, 0, true);
    d.setUint32(12, i.snapLen, true);
    writeOptions(d, bytes, BLOCK_HEAD + IDB_FIXED, opts);
  });
}

/** One frame. */
export interface PcapngPacket {
  /** Interface number in the section (0: the first Interface Description Block). */
  interfaceId: number;
  /** Time in microseconds since the epoch. */
  timeUs: number;
  /** Length on the wire (at least `data.length`). */
  origLen: number;
  /** The captured bytes. */
  data: Uint8Array;
}

/** An Enhanced Packet Block (no options). */
export function enhancedPacket(p: PcapngPacket): Uint8Array {
  return block(BlockType.enhancedPacket, EPB_FIXED + pad4(p.data.length), (d, bytes) => {
    d.setUint32(8, p.interfaceId, true);
    d.setUint32(12, Math.floor(p.timeUs / TWO_32), true);
    d.setUint32(16, p.timeUs % TWO_32, true);
    d.setUint32(20, p.data.length, true);
    d.setUint32(24, Math.max(p.origLen, p.data.length), true);
    bytes.set(p.data, BLOCK_HEAD + EPB_FIXED);
  });
}
