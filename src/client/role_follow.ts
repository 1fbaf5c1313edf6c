/**
 * `mcr ctl role --stdin`: set the relay's role from lines on standard input,
 * `active|standby [SOURCE...]`, over one connection kept open — what
 * keepalived's notify script (packaging/keepalived/mcr-keepalived) runs once,
 * so that no process has to start between a VRRP state change and the role
 * (starting `mcr ctl` takes about a second on a loaded host).
 *
 * Only the newest line matters: a line that arrives while an earlier one is
 * still being applied (the relay restarting) replaces it. A relay that
 * cannot be reached is tried again every {@link RETRY_MS} for up to
 * `retryMs`; a lost connection is opened again. One line is printed per
 * role set — the local time, the role, who set it, and how long setting it
 * took — or refused, in the order of the input; the command ends at the end
 * of its input, once the last role is applied.
 *
 * @module
 */
import { ControlClient, ControlConnectionError } from "./client.ts";
import { termSafe } from "./format.ts";

/** Pause between two attempts to reach the relay (ms). */
export const RETRY_MS = 200;

/** Local wall-clock time with milliseconds ("17:16:34.420"), to line the output up with logs. */
function clock(): string {
  const d = new Date();
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${
    p(d.getMilliseconds(), 3)
  }`;
}

/** A role asked for on standard input. */
interface Wanted {
  role: string;
  source: string;
}

/** One input line → the role and who asks (`default` when the line names no one). */
export function parseRoleLine(line: string, source: string): Wanted | string | null {
  const words = line.trim().split(/\s+/).filter(Boolean);
  if (words.length === 0) return null;
  const [role, ...who] = words;
  if (role !== "active" && role !== "standby") {
    return `"${role}" is not a role (active or standby)`;
  }
  return { role, source: who.length ? who.join(" ") : source };
}

/** Lines of `input` as they come. */
async function* lines(input: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let rest = "";
  for await (const chunk of input.pipeThrough(new TextDecoderStream())) {
    rest += chunk;
    let nl: number;
    while ((nl = rest.indexOf("\n")) >= 0) {
      yield rest.slice(0, nl);
      rest = rest.slice(nl + 1);
    }
  }
  if (rest) yield rest;
}

/**
 * Follow `input` (see module doc); `log` gets one line per outcome. Returns
 * the exit code: 0, or 1 when the last role could not be set.
 */
export async function followRoles(
  socket: string,
  opts: {
    input: ReadableStream<Uint8Array>;
    source: string;
    timeoutMs: number;
    retryMs: number;
    log: (line: string) => void;
  },
): Promise<number> {
  // Input in order: roles still to apply and refusals still to print. A
  // role replaces any earlier role not yet started; a refusal is printed
  // after the outcome of every line before it, so the output keeps the
  // order of the input.
  const queue: (Wanted | string)[] = [];
  const superseded = () => queue.some((q) => typeof q !== "string");
  let ended = false;
  let wake = () => {};
  const reader = (async () => {
    for await (const line of lines(opts.input)) {
      const w = parseRoleLine(line, opts.source);
      if (typeof w === "string") queue.push(`mcr ctl role: ${w}`);
      else if (w) {
        // at most one role waits: the newer one takes its place at the end
        const older = queue.findIndex((q) => typeof q !== "string");
        if (older >= 0) queue.splice(older, 1);
        queue.push(w);
      } else continue;
      wake();
    }
    ended = true;
    wake();
  })();
  let c: ControlClient | null = null;
  let status = 0;
  for (;;) {
    const next = queue.shift();
    if (next === undefined) {
      if (ended) break;
      await new Promise<void>((r) => wake = r);
      continue;
    }
    if (typeof next === "string") {
      opts.log(next);
      continue;
    }
    const w: Wanted = next;
    const t0 = performance.now();
    for (;;) {
      try {
        c ??= await ControlClient.connect(socket, opts.timeoutMs);
        const r = await c.request<{ role: string; previous: string; changed: boolean }>("role", {
          role: w.role,
          source: w.source,
        });
        if (r.ok) {
          const was = r.result.changed ? ` (was ${r.result.previous})` : " (unchanged)";
          const ms = (performance.now() - t0).toFixed(0);
          opts.log(
            termSafe(`${clock()} role ${r.result.role}${was}, set by ${w.source} (${ms} ms)`),
          );
          status = 0;
        } else {
          opts.log(termSafe(`mcr ctl role: ${r.error.message} [${r.error.code}]`));
          status = 1;
        }
        break;
      } catch (e) {
        if (!(e instanceof ControlConnectionError)) throw e;
        await c?.close().catch(() => {});
        c = null;
        if (superseded()) break; // superseded: apply the newer one
        if (performance.now() - t0 > opts.retryMs) {
          opts.log(termSafe(`mcr ctl role: could not set ${w.role}: ${e.message}`));
          status = 1;
          break;
        }
        await new Promise((r) => setTimeout(r, RETRY_MS));
      }
    }
  }
  await reader;
  await c?.close().catch(() => {});
  return status;
}
