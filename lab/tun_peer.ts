/**
 * The far side of a tun device in a namespace test (lab/tun_peer.py, python3):
 * a process that holds the tun's file descriptor, as a VPN daemon does, and
 * writes datagrams into it (RX on the device) or reads and verifies what the
 * host sends out of it. Not shipped; product code never imports it.
 *
 * @module
 */
import { Proc, REPO, type Topology, waitForFile } from "./netns.ts";

/** What a writing peer reports. */
export interface TunWriteReport {
  /** Datagrams the tun took (write() succeeded). */
  sent: number;
  /** Writes the tun refused. */
  errors: number;
}

/** What a reading peer reports (decoded and verified by the peer itself). */
export interface TunReadReport {
  /** Datagrams to a watched port with a valid mcr-sink payload. */
  received: number;
  /** Of those, first copies. */
  unique: number;
  /** Of those, copies of a sequence number already read (same destination and stream). */
  duplicates: number;
  /** Of those, read after a higher sequence number of the same destination and stream. */
  reordered: number;
  /** Datagrams to a watched port whose payload is not a valid mcr-sink payload. */
  corrupt: number;
  /** Datagrams whose IPv4 header checksum does not verify. */
  bad_ip_csum: number;
  /** Datagrams whose UDP checksum does not verify. */
  bad_udp_csum: number;
  /** Packets that are not IPv4/UDP to a watched port (IGMP reports, ...). */
  other: number;
  /** Headers of the first datagrams read. */
  datagrams: {
    src: string;
    dst: string;
    sport: number;
    dport: number;
    ttl: number;
    tos: number;
    udp_len: number;
    udp_csum: number;
  }[];
  /** Unique datagrams per "dst:port/stream". */
  streams: Record<string, number>;
}

/** Options of a tun peer. */
export interface TunPeerOptions {
  /** Link type to give the device (TUNSETLINK), e.g. 512 (PPP); default: ARPHRD_NONE. */
  type?: number;
  /**
   * Keep the device when the peer exits (TUNSETPERSIST): it then has no carrier until another
   * peer of the same name attaches to it.
   */
  persist?: boolean;
}

/** A running tun peer. */
class TunPeer {
  constructor(readonly proc: Proc, readonly base: string) {}

  /** The peer's stop file (a count in it: see the reader). */
  get stopFile(): string {
    return `${this.base}.stop`;
  }

  /** Let go of the device (the peer exits; the device disappears). */
  async stop(count?: number): Promise<{ code: number; stdout: string; stderr: string }> {
    await Deno.writeTextFile(`${this.stopFile}.tmp`, count === undefined ? "" : `${count}\n`);
    await Deno.rename(`${this.stopFile}.tmp`, this.stopFile);
    return this.proc.wait();
  }
}

/** A peer that writes datagrams into its tun. */
export class TunWriter extends TunPeer {
  /** Send now; resolves with the peer's report once every datagram was written. */
  async send(timeoutMs = 120_000): Promise<TunWriteReport> {
    await Deno.writeTextFile(`${this.base}.go`, "go\n");
    await waitForFile(`${this.base}.report`, timeoutMs, "the tun writer's report");
    return JSON.parse(await Deno.readTextFile(`${this.base}.report`));
  }
}

/** A peer that reads and verifies what the host sends out of its tun. */
export class TunReader extends TunPeer {
  /**
   * Tell the peer how many datagrams the relay sent toward it (those lost on the way
   * subtracted) and wait for its report: it stops once it has read that many, or 30 s later.
   */
  async settle(count: number): Promise<TunReadReport> {
    const r = await this.stop(count);
    try {
      return JSON.parse(r.stdout);
    } catch {
      throw new Error(`tun reader exited ${r.code}: ${r.stderr}\n${r.stdout}`);
    }
  }
}

/** Start lab/tun_peer.py in `role` with `args(base)`; resolves once the device exists. */
async function start(
  t: Topology,
  role: string,
  dev: string,
  args: (base: string) => string[],
  opts: TunPeerOptions,
): Promise<{ proc: Proc; base: string }> {
  const base = await Deno.makeTempFile({ prefix: `${t.prefix}-tun-${dev}-` });
  await Deno.remove(base);
  const proc = new Proc(t.ns(role), [
    "python3",
    `${REPO}/lab/tun_peer.py`,
    ...args(base),
    "--dev",
    dev,
    ...(opts.type === undefined ? [] : ["--type", String(opts.type)]),
    ...(opts.persist ? ["--persist"] : []),
    "--ready",
    `${base}.ready`,
    "--stop",
    `${base}.stop`,
  ]);
  try {
    await waitForFile(`${base}.ready`, 10_000, `the tun peer of ${dev}`);
  } catch (e) {
    proc.kill("SIGKILL");
    throw new Error(`${(e as Error).message}: ${(await proc.wait()).stderr}`);
  }
  return { proc, base };
}

/**
 * Create tun device `dev` in namespace `role`, held by a peer that will write `count`
 * datagrams from `src` to `dst` ("G:P") into it at `rate` per second when told to
 * ({@link TunWriter.send}): `size`-byte mcr-sink payloads of stream `stream`, sequence numbers
 * 0..count-1 (IP version `version`: 6 makes every one an IPv4 packet claiming version 6). An
 * IPv6 `src` (and a `dst` "[G]:P") writes IPv6/UDP datagrams, `ttl` their hop limit.
 * The device is down, without an address: the test configures it.
 */
export async function startTunWriter(
  t: Topology,
  role: string,
  dev: string,
  w: {
    src: string;
    dst: string;
    count: number;
    rate: number;
    size: number;
    stream: number;
    ttl?: number;
    version?: 4 | 6;
  },
  opts: TunPeerOptions = {},
): Promise<TunWriter> {
  const { proc, base } = await start(t, role, dev, (base) => [
    "write",
    "--go",
    `${base}.go`,
    "--report",
    `${base}.report`,
    "--src",
    w.src,
    "--dst",
    w.dst,
    "--count",
    String(w.count),
    "--rate",
    String(w.rate),
    "--size",
    String(w.size),
    "--stream",
    String(w.stream),
    "--ttl",
    String(w.ttl ?? 8),
    "--version",
    String(w.version ?? 4),
  ], opts);
  return new TunWriter(proc, base);
}

/**
 * Create tun device `dev` in namespace `role`, held by a peer that reads what the host sends
 * out of it and verifies the UDP datagrams to `ports` ({@link TunReader.settle}).
 */
export async function startTunReader(
  t: Topology,
  role: string,
  dev: string,
  ports: number[],
  opts: TunPeerOptions = {},
): Promise<TunReader> {
  const { proc, base } = await start(
    t,
    role,
    dev,
    () => ["read", ...ports.flatMap((p) => ["--port", String(p)])],
    opts,
  );
  return new TunReader(proc, base);
}
