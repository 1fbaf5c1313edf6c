/**
 * The `capture` control command (`mcr ctl capture`): the frames a rule
 * matches, streamed to the client as they are captured (relay/capture.ts),
 * in records the client writes to a pcapng file (client/pcapng.ts). See
 * docs/control.md for the records.
 *
 * It answers only on the read-write control socket: frames carry payloads,
 * which the read-only socket's readers are not meant to see.
 *
 * @module
 */
import { ControlError, LiveStreamedResult } from "./protocol.ts";
import { int, str } from "./args.ts";
import type { ControlContext, Handler } from "./commands.ts";
import { RuleNotFoundError } from "../relay/relay.ts";
import {
  type CaptureBatch,
  CaptureRefused,
  type CaptureRun,
  DEFAULT_CAPTURE_COUNT,
  DEFAULT_CAPTURE_SECONDS,
  MAX_CAPTURE_COUNT,
  MAX_CAPTURE_SECONDS,
} from "../relay/capture.ts";
import type { LinkLayout } from "../../ffi/mod.ts";

/** pcap/pcapng LINKTYPE of a link layout: an Ethernet header, or the IP packet itself. */
export const LINKTYPE: Readonly<Record<LinkLayout, number>> = { ethernet: 1, ip: 101 };

/** A `progress` record goes out at least this often when no frame comes (ms). */
export const CAPTURE_HEARTBEAT_MS = 1000;

/** The records of a running capture: a header, frames as they come, progress, the end. */
async function* captureRecords(
  header: Record<string, unknown>,
  run: CaptureRun,
): AsyncGenerator<unknown[]> {
  try {
    yield [header];
    let quietSince = performance.now();
    for await (const b of run.batches) {
      const records: unknown[] = b.frames.map((f) => ({
        type: "frame",
        t_us: f.timeUs,
        len: f.origLen,
        data: f.data.toBase64(),
      }));
      if (b.end) records.push(endRecord(b, b.end));
      else if (records.length === 0) {
        // a client that went away is noticed at the next write: write at least this often
        if (performance.now() - quietSince < CAPTURE_HEARTBEAT_MS) continue;
        records.push({ type: "progress", frames: b.captured, drops: b.drops });
      }
      quietSince = performance.now();
      yield records;
    }
  } finally {
    run.stop();
  }
}

function endRecord(b: CaptureBatch, reason: string): Record<string, unknown> {
  return { type: "end", reason, frames: b.captured, drops: b.drops };
}

/** `capture`, by command name. */
export const CAPTURE_HANDLERS: Record<"capture", Handler> = {
  capture(ctx: ControlContext, args: Record<string, unknown>) {
    const name = str(args, "rule", true);
    // which path of a rule with redundant inputs (0..n-1; the relay checks it)
    const input = int(args, "input", 0, Number.MAX_SAFE_INTEGER, 0);
    const count = int(args, "count", 1, MAX_CAPTURE_COUNT, DEFAULT_CAPTURE_COUNT);
    const seconds = int(args, "seconds", 1, MAX_CAPTURE_SECONDS, DEFAULT_CAPTURE_SECONDS);
    let started;
    try {
      started = ctx.relay.capture(name, { input, count, seconds });
    } catch (e) {
      if (e instanceof RuleNotFoundError) throw new ControlError("not_found", e.message);
      if (e instanceof CaptureRefused) throw new ControlError(e.code, e.message);
      throw e;
    }
    const { rule, interface: iface, layout, run } = started;
    const header = {
      type: "capture",
      rule: rule.name,
      id: rule.id,
      interface: iface,
      input,
      linktype: LINKTYPE[layout],
      count,
      seconds,
    };
    return Promise.resolve(new LiveStreamedResult(captureRecords(header, run)));
  },
};
