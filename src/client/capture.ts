/**
 * `mcr ctl capture RULE [-w FILE] [--count N] [--seconds S] [--input N]`:
 * streams the daemon's `capture` records (control/capture_command.ts) into a
 * pcapng file (pcapng.ts) that Wireshark and tshark read, or to stdout (not a
 * terminal). The file is written block by block as frames come, so what
 * was written is a valid file whatever ends the capture (Ctrl-C, or a
 * reader of stdout that stops, included).
 *
 * The file: created with mode 0600 (frames carry payloads), replaced when
 * it is a regular file, refused when it is a symbolic link or not a regular
 * file, and never in the control socket's directory.
 *
 * The summary (frames, capture drops, why it ended) goes to stderr; with
 * `--json` the `end` record goes to stdout too, unless the frames do.
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import { ControlClient, ControlConnectionError } from "./client.ts";
import { type CtlValues, UsageError } from "../cli/program.ts";
import { jsonTermSafe, termSafe } from "./format.ts";
import { RecordStreamError } from "./listing.ts";
import { enhancedPacket, interfaceDescription, sectionHeader } from "./pcapng.ts";
import { MCR_VERSION } from "../common/version.ts";

/** Exit code when the capture ended before its count or time (rule removed, relay stopped). */
const CUT_SHORT = 1;

/** A count flag as a number (kept as written when not one, so the daemon names the problem). */
function intFlag(v: string | undefined): number | string | undefined {
  if (v === undefined) return undefined;
  return /^\d+$/.test(v) ? Number(v) : v;
}

/** The `capture` request's args from the command line. */
export function captureArgs(v: CtlValues, rule: string): Record<string, unknown> {
  const args: Record<string, unknown> = { rule };
  if (v.count !== undefined) args.count = intFlag(v.count);
  if (v.seconds !== undefined) args.seconds = intFlag(v.seconds);
  if (v.input !== undefined) args.input = intFlag(v.input);
  return args;
}

/** Where the frames go: a file, or stdout. */
interface Sink {
  write(b: Uint8Array): Promise<void>;
  close(): void;
  /** For messages. */
  readonly name: string;
}

/**
 * Check that `path` may be written (see module doc) before anything is asked
 * of the daemon.
 * @throws {UsageError} saying why not
 */
export async function checkCaptureFile(path: string, controlSocket: string): Promise<void> {
  const abs = resolve(path);
  const real = async (p: string) => {
    try {
      return await Deno.realPath(p);
    } catch {
      return resolve(p);
    }
  };
  if ((await real(dirname(abs))) === (await real(dirname(resolve(controlSocket))))) {
    throw new UsageError(`capture: -w ${path}: not in the control socket's directory`);
  }
  let st: Deno.FileInfo;
  try {
    st = await Deno.lstat(abs);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw new UsageError(`capture: -w ${path}: ${(e as Error).message}`);
  }
  if (st.isSymlink) throw new UsageError(`capture: -w ${path} is a symbolic link; name the file`);
  if (!st.isFile) throw new UsageError(`capture: -w ${path} exists and is not a regular file`);
}

async function writeAll(w: { write(b: Uint8Array): Promise<number> }, b: Uint8Array) {
  let off = 0;
  while (off < b.length) off += await w.write(b.subarray(off));
}

/** Open the sink (the file is created only once the daemon accepted the capture). */
async function openSink(path: string | undefined): Promise<Sink> {
  if (path === undefined || path === "-") {
    return { write: (b) => writeAll(Deno.stdout, b), close: () => {}, name: "stdout" };
  }
  const f = await Deno.open(path, { write: true, create: true, truncate: true, mode: 0o600 });
  return {
    write: (b) => writeAll(f, b),
    close: () => f.close(),
    name: path,
  };
}

/** A record of the capture stream (docs/control.md). */
interface CaptureRecord {
  type: "capture" | "frame" | "progress" | "end";
  [k: string]: unknown;
}

/**
 * Run `ctl capture`; returns the exit code.
 * @throws {UsageError} {ControlRefusedError} {ControlConnectionError} {RecordStreamError}
 */
export async function runCapture(
  v: CtlValues,
  args: Record<string, unknown>,
  timeoutMs: number,
): Promise<number> {
  const path = v.write;
  const toStdout = path === undefined || path === "-";
  if (toStdout && Deno.stdout.isTerminal()) {
    throw new UsageError("capture writes pcapng: give -w FILE, or send stdout to a file or pipe");
  }
  if (!toStdout) await checkCaptureFile(path, v["control-socket"]!);
  const c = await ControlClient.connect(v["control-socket"]!, timeoutMs);
  let interrupted = false;
  const onInt = () => {
    interrupted = true;
    c.close();
  };
  Deno.addSignalListener("SIGINT", onInt);
  let sink: Sink | null = null;
  let header: CaptureRecord | null = null;
  let end: CaptureRecord | null = null;
  let frames = 0;
  try {
    for await (const records of c.stream<CaptureRecord>("capture", args)) {
      for (const r of records) {
        if (r.type === "capture") {
          header = r;
          sink = await openSink(path);
          await sink.write(sectionHeader(`mcr ${MCR_VERSION}`));
          await sink.write(interfaceDescription({
            linkType: Number(r.linktype),
            snapLen: 0,
            name: String(r.interface),
          }));
        } else if (r.type === "frame") {
          if (!sink) throw new RecordStreamError("capture: a frame before the capture record");
          await sink.write(enhancedPacket({
            interfaceId: 0,
            timeUs: Number(r.t_us),
            origLen: Number(r.len),
            data: Uint8Array.fromBase64(String(r.data)),
          }));
          frames++;
        } else if (r.type === "end") end = r;
      }
    }
  } catch (e) {
    // a reader that stops reading (`| head`) ends the capture as Ctrl-C does
    if (e instanceof Deno.errors.BrokenPipe) interrupted = true;
    else if (!(interrupted && e instanceof ControlConnectionError)) throw e;
  } finally {
    Deno.removeSignalListener("SIGINT", onInt);
    sink?.close();
    await c.close();
  }
  const reason = interrupted ? "interrupted" : String(end?.reason ?? "unknown");
  const drops = Number(end?.drops ?? 0);
  const rule = header ? `${header.rule}` : String(args.rule);
  console.error(termSafe(
    `mcr ctl capture: ${frames} frames of rule ${rule} written to ${sink?.name ?? "-"} ` +
      `(ended: ${reason}; capture drops: ${drops}${
        drops > 0 ? ", frames the capture buffer had no room for, still forwarded" : ""
      })`,
  ));
  if (v.json && !toStdout && end) console.log(jsonTermSafe(JSON.stringify(end)));
  return reason === "count" || reason === "seconds" || reason === "interrupted" ? 0 : CUT_SHORT;
}
