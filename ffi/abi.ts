/**
 * The libmcr ABI as the bindings see it: the version, every struct's size
 * and the offset of each of its fields (by name, in declaration order), and
 * the constants shared with C. `checkAbi` compares all of it with what the
 * loaded library reports (`mcr_abi_version`, `mcr_abi_sizeof`,
 * `mcr_abi_offsets`, `mcr_abi_constants`), so a drifted header fails at load
 * with the struct and field named, never as corrupt data later.
 *
 * Nothing else in ffi/ writes a bare offset: handles index these tables.
 *
 * @module
 */

/** ABI version this module was written for (`MCR_ABI_VERSION`). */
export const ABI_VERSION = 11;

/** A struct: its id for `mcr_abi_sizeof`/`mcr_abi_offsets`, size, and field byte offsets. */
export interface StructLayout<F extends string> {
  /** `enum mcr_abi_struct` value. */
  readonly id: number;
  /** sizeof. */
  readonly size: number;
  /** Byte offset of each field, in C declaration order. */
  readonly field: Readonly<Record<F, number>>;
}

function layout<F extends string>(
  id: number,
  size: number,
  field: Record<F, number>,
): StructLayout<F> {
  return { id, size, field };
}

/** `struct mcr_rx_config` (16 × u32). */
export const RX_CONFIG = layout(1, 64, {
  ifindex: 0,
  tpacketVersion: 4,
  frameSize: 8,
  frameCount: 12,
  blockSize: 16,
  blockCount: 20,
  blockTimeoutMs: 24,
  fanoutId: 28,
  fanoutMode: 32,
  flags: 36,
  batchMax: 40,
  coalesceUs: 44,
  coalescePps: 48,
  wakeFd: 52,
  mtuHint: 56,
  reserved: 60,
});

/** `struct mcr_rx_desc` (8 × u32, one per received frame). */
export const RX_DESC = layout(2, 32, {
  offset: 0,
  snaplen: 4,
  len: 8,
  status: 12,
  vlanTci: 16,
  vlanTpid: 20,
  pkttype: 24,
  tstampUs: 28,
});

/** `struct mcr_rx_stats` (8 × u64). */
export const RX_STATS = layout(3, 64, {
  packets: 0,
  drops: 8,
  freezes: 16,
  polls: 24,
  wakeups: 32,
  frames: 40,
  batches: 48,
  gathers: 56,
});

/** `struct mcr_tx_config` (6 × u32). */
export const TX_CONFIG = layout(4, 24, {
  ifindex: 0,
  frameSize: 4,
  frameCount: 8,
  flags: 12,
  mtuHint: 16,
  reserved: 20,
});

/** `struct mcr_template`: addresses and ports in network byte order. */
export const TEMPLATE = layout(5, 48, {
  kind: 0,
  ifindex: 4,
  srcIp: 8,
  dstIp: 12,
  srcPort: 16,
  dstPort: 18,
  ttl: 20,
  tos: 21,
  dstHostBits: 22,
  reserved0: 23,
  dstMac: 24,
  srcMac: 32,
  tx: 40,
});

/** `struct mcr_fwd_desc` (8 × u32, written by the hot loop). */
export const FWD_DESC = layout(6, 32, {
  frame: 0,
  l3Offset: 4,
  payloadOff: 8,
  payloadLen: 12,
  tmpl: 16,
  ttl: 20,
  flags: 24,
  reserved: 28,
});

/** `struct mcr_out_counters` (8 × double per template). */
export const OUT_COUNTERS = layout(7, 64, {
  packets: 0,
  bytes: 8,
  ringFull: 16,
  errors: 24,
  linkDown: 32,
  tooBig: 40,
  fragmented: 48,
  queued: 56,
});

/** `struct mcr_iface_info`. */
export const IFACE_INFO = layout(8, 32, {
  ifindex: 0,
  mtu: 4,
  flags: 8,
  ipv4: 12,
  mac: 16,
  hasMac: 24,
  linkType: 28,
});

/** `struct mcr_tx_stats`. */
export const TX_STATS = layout(9, 104, {
  frames: 0,
  sent: 8,
  kicks: 16,
  ringFull: 24,
  tooBig: 32,
  discarded: 40,
  kickErrors: 48,
  linkChanges: 56,
  mtuChanges: 64,
  queued: 72,
  mtu: 76,
  down: 80,
  lastErr: 84,
  linkFlags: 88,
  stalledMs: 92,
  frameRoom: 96,
  reserved: 100,
});

/** `struct mcr_link_event`. */
export const LINK_EVENT = layout(10, 40, {
  kind: 0,
  ifindex: 4,
  flags: 8,
  mtu: 12,
  type: 16,
  reserved: 20,
  name: 24,
});

/** `struct mcr_rxset_stats` (5 × u64). */
export const RXSET_STATS = layout(11, 40, {
  polls: 0,
  wakeups: 8,
  gathers: 16,
  batches: 24,
  frames: 32,
});

/** Every struct the bindings use. */
export const STRUCTS = {
  rx_config: RX_CONFIG,
  rx_desc: RX_DESC,
  rx_stats: RX_STATS,
  tx_config: TX_CONFIG,
  template: TEMPLATE,
  fwd_desc: FWD_DESC,
  out_counters: OUT_COUNTERS,
  iface_info: IFACE_INFO,
  tx_stats: TX_STATS,
  link_event: LINK_EVENT,
  rxset_stats: RXSET_STATS,
} as const;

/** 2^32: the weight of a u64's high word. */
const HIGH_WORD = 0x1_0000_0000;

/** The little-endian u64 at byte offset `offset` of `words` (a struct read as u32s), as a number. */
export function u64At(words: Uint32Array, offset: number): number {
  const w = offset >> 2;
  return words[w] + words[w + 1] * HIGH_WORD;
}

/** Field names of each all-u64 layout, listed once (the stats readers run every sync). */
const fieldNames = new WeakMap<StructLayout<string>, readonly string[]>();

/**
 * Every field of `words` (a struct laid out as `s` whose fields are all u64,
 * read as little-endian u32 pairs) as a number. No BigInt and no view is
 * made: the rings' and sets' stats readers call this for every ring at
 * every counter sync.
 */
export function readU64Fields<F extends string>(
  s: StructLayout<F>,
  words: Uint32Array,
): Record<F, number> {
  let names = fieldNames.get(s);
  if (!names) fieldNames.set(s, names = Object.keys(s.field));
  const out = {} as Record<F, number>;
  for (const k of names as F[]) out[k] = u64At(words, s.field[k]);
  return out;
}

/** Words (of its element size) per entry of an array of `s` (u32, u64 or double structs). */
export function words(s: StructLayout<string>, elementBytes: 4 | 8): number {
  return s.size / elementBytes;
}

/** `mcr_rx_config.flags`. */
export const RxFlag = {
  /** Let the kernel pick a free fanout group id. */
  FANOUT_UNIQUEID: 0x1,
  /** No IPv4/UDP BPF filter (own transmissions are still never captured). */
  NO_FILTER: 0x2,
  /** C test hook (not used by the relay): the BPF outgoing check instead of the fanout flag. */
  FORCE_BPF_OUTGOING: 0x4,
  /** Frames start at the IPv4 header: a link without a link-layer header (tun, WireGuard, ...). */
  L3: 0x8,
  /** Promiscuous capture (a mirror/SPAN port): frames for other hosts' MACs reach the ring. */
  PROMISC: 0x10,
  /** The filter passes IPv6/UDP too (next header UDP, hop-by-hop, routing or destination options). */
  IPV6: 0x20,
} as const;

/** `mcr_fwd_desc.flags`. */
export const FwdFlag = {
  /** The input datagram is IPv6: `l3Offset` is its fixed header, `ttl` the output hop limit/TTL. */
  IN_IPV6: 0x1,
} as const;

/** `mcr_tx_config.flags`. */
export const TxFlag = {
  /** PACKET_QDISC_BYPASS. */
  QDISC_BYPASS: 0x1,
} as const;

/** `enum mcr_template_kind`. */
export const TemplateKind = { unused: 0, ring: 1, socket: 2 } as const;

/** `enum mcr_fanout_mode` (PACKET_FANOUT modes; none = no fanout group). */
export const FanoutMode = {
  none: 0xffff,
  hash: 0,
  lb: 1,
  cpu: 2,
  rollover: 3,
  random: 4,
  qm: 5,
} as const;

/** `enum mcr_own_tx_mode`: how an RX socket ignores the relay's own transmissions. */
export const OwnTxMode = { fanout_flag: 1, bpf: 2, sockopt: 3 } as const;

/** `enum mcr_link_event_kind` (addr: an IPv4 address of the interface was added or removed). */
export const LinkEventKind = { new: 1, del: 2, resync: 3, done: 4, addr: 5 } as const;

/** The constants in `enum mcr_abi_constant` order, with the values the bindings assume. */
const CONSTANTS: readonly [string, number][] = [
  ["MCR_RX_FANOUT_UNIQUEID", RxFlag.FANOUT_UNIQUEID],
  ["MCR_RX_NO_FILTER", RxFlag.NO_FILTER],
  ["MCR_RX_FORCE_BPF_OUTGOING", RxFlag.FORCE_BPF_OUTGOING],
  ["MCR_TX_QDISC_BYPASS", TxFlag.QDISC_BYPASS],
  ["MCR_TMPL_UNUSED", TemplateKind.unused],
  ["MCR_TMPL_RING", TemplateKind.ring],
  ["MCR_TMPL_SOCKET", TemplateKind.socket],
  ["MCR_FANOUT_NONE", FanoutMode.none],
  ["MCR_FANOUT_HASH", FanoutMode.hash],
  ["MCR_FANOUT_LB", FanoutMode.lb],
  ["MCR_FANOUT_CPU", FanoutMode.cpu],
  ["MCR_FANOUT_ROLLOVER", FanoutMode.rollover],
  ["MCR_FANOUT_RND", FanoutMode.random],
  ["MCR_FANOUT_QM", FanoutMode.qm],
  ["MCR_OWN_TX_FANOUT_FLAG", OwnTxMode.fanout_flag],
  ["MCR_OWN_TX_BPF", OwnTxMode.bpf],
  ["MCR_OWN_TX_SOCKOPT", OwnTxMode.sockopt],
  ["MCR_LINK_NEW", LinkEventKind.new],
  ["MCR_LINK_DEL", LinkEventKind.del],
  ["MCR_LINK_RESYNC", LinkEventKind.resync],
  ["MCR_LINK_DUMP_DONE", LinkEventKind.done],
  ["MCR_LINK_ADDR", LinkEventKind.addr],
  ["MCR_RX_L3", RxFlag.L3],
  ["MCR_RX_PROMISC", RxFlag.PROMISC],
  ["MCR_RX_IPV6", RxFlag.IPV6],
  ["MCR_FWD_IN_IPV6", FwdFlag.IN_IPV6],
];

/** The ABI introspection calls of a loaded libmcr. */
export interface AbiProbe {
  /** `mcr_abi_version()`. */
  version(): number;
  /** `mcr_abi_sizeof(id)`. */
  sizeOf(id: number): number;
  /** `mcr_abi_offsets(id, out, max)`. */
  offsets(id: number, out: Uint32Array): number;
  /** `mcr_abi_constants(out, max)`. */
  constants(out: Uint32Array): number;
}

/**
 * Compare the bindings' view of the ABI with the library's. Returns null
 * when they agree, else what differs (for the load error).
 */
export function checkAbi(probe: AbiProbe): string | null {
  const v = probe.version();
  if (v !== ABI_VERSION) return `ABI version ${v}, expected ${ABI_VERSION}`;
  for (const [name, s] of Object.entries(STRUCTS)) {
    const size = probe.sizeOf(s.id);
    if (size !== s.size) return `struct mcr_${name} is ${size} bytes, bindings expect ${s.size}`;
    const fields = Object.entries(s.field as Record<string, number>);
    const out = new Uint32Array(64);
    const n = probe.offsets(s.id, out);
    if (n !== fields.length) {
      return `struct mcr_${name} has ${n} fields, bindings expect ${fields.length}`;
    }
    for (let i = 0; i < n; i++) {
      if (out[i] !== fields[i][1]) {
        return `struct mcr_${name} field ${fields[i][0]} is at offset ${out[i]}, ` +
          `bindings expect ${fields[i][1]}`;
      }
    }
  }
  const values = new Uint32Array(64);
  const n = probe.constants(values);
  if (n !== CONSTANTS.length) return `${n} ABI constants, bindings expect ${CONSTANTS.length}`;
  for (let i = 0; i < n; i++) {
    if (values[i] !== CONSTANTS[i][1]) {
      return `${CONSTANTS[i][0]} is ${values[i]}, bindings expect ${CONSTANTS[i][1]}`;
    }
  }
  return null;
}
