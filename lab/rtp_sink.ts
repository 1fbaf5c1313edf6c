/**
 * An independent RTP receiver for tests (not product code): joins a group,
 * reads datagrams until idle, and reports per RTP sequence number (extended
 * to 32 bits) what arrived: received, unique, duplicates, reordered (a
 * sequence number lower than the highest so far), and the longest gap
 * between two consecutive unique datagrams. Run it inside a namespace:
 *
 *   deno run -A --unstable-net lab/rtp_sink.ts --group 239.10.1.1:6001 \
 *     --iface-addr 10.77.2.2 --ready-file F --idle-ms 1500 [--duration S]
 *
 * Prints one JSON object ({@link RtpSinkReport}) on stdout.
 *
 * @module
 */

/** What {@link main} prints. */
export interface RtpSinkReport {
  /** Datagrams read. */
  received: number;
  /** Datagrams that were not RTP version 2. */
  not_rtp: number;
  /** Distinct sequence numbers. */
  unique: number;
  /** Sequence numbers seen again. */
  duplicates: number;
  /** Datagrams below the highest sequence number so far (first arrivals only). */
  reordered: number;
  /** Lowest and highest extended sequence numbers. */
  first_seq: number | null;
  /** Highest extended sequence number. */
  highest_seq: number | null;
  /** Longest time between consecutive unique datagrams (µs). */
  max_gap_us: number;
}

function arg(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

async function main(args: string[]): Promise<void> {
  const [group, port] = (arg(args, "--group") ?? "").split(":");
  const ifaceAddr = arg(args, "--iface-addr") ?? "0.0.0.0";
  const idleMs = Number(arg(args, "--idle-ms") ?? 1500);
  const durationS = Number(arg(args, "--duration") ?? 120);
  const ready = arg(args, "--ready-file");
  const conn = Deno.listenDatagram({
    hostname: "0.0.0.0",
    port: Number(port),
    transport: "udp",
    reuseAddress: true,
  });
  await conn.joinMulticastV4(group, ifaceAddr);
  if (ready) await Deno.writeTextFile(ready, "ready\n");
  const seen = new Set<number>();
  const r: RtpSinkReport = {
    received: 0,
    not_rtp: 0,
    unique: 0,
    duplicates: 0,
    reordered: 0,
    first_seq: null,
    highest_seq: null,
    max_gap_us: 0,
  };
  let hi: number | null = null;
  let lastUnique = 0;
  const stopAt = Date.now() + durationS * 1000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stop = () => conn.close();
  const arm = (ms: number) => {
    clearTimeout(timer);
    timer = setTimeout(stop, ms);
  };
  arm(durationS * 1000);
  try {
    for (;;) {
      const [buf] = await conn.receive();
      const now = performance.now();
      if (r.received === 0 || idleMs > 0) arm(Math.min(idleMs, stopAt - Date.now()));
      r.received++;
      if (buf.length < 12 || (buf[0] & 0xc0) !== 0x80) {
        r.not_rtp++;
        continue;
      }
      const seq16 = (buf[2] << 8) | buf[3];
      const ext: number = hi === null ? seq16 : hi + (((seq16 - hi) << 16) >> 16);
      if (seen.has(ext)) {
        r.duplicates++;
        continue;
      }
      seen.add(ext);
      r.unique++;
      if (lastUnique > 0) {
        r.max_gap_us = Math.max(r.max_gap_us, Math.round((now - lastUnique) * 1000));
      }
      lastUnique = now;
      if (r.first_seq === null) r.first_seq = ext;
      if (hi !== null && ext < hi) r.reordered++;
      if (hi === null || ext > hi) hi = ext;
      r.highest_seq = hi;
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.BadResource) && !(e instanceof Deno.errors.Interrupted)) throw e;
  } finally {
    clearTimeout(timer);
  }
  console.log(JSON.stringify(r));
}

if (import.meta.main) await main(Deno.args);
