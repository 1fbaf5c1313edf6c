/**
 * The control server: a Unix stream socket speaking the line protocol of
 * {@link ./protocol.ts}, many clients at once, each request answered in
 * order on its connection. It runs on the main thread's event loop; the data
 * path lives in Workers and never waits for it.
 *
 * The socket is created inside a directory of mode 0750 (created if
 * missing; the server refuses to start when the directory is group- or
 * world-writable), a stale socket left by a dead daemon is removed (a live
 * one is not: two daemons cannot share a socket), and the socket is made
 * 0660 (0600 when a read-only socket beside it serves the group: see
 * daemon.ts). A read-only server answers only the commands that look.
 *
 * @module
 */
import { logger } from "../common/log.ts";
import { type ControlContext, runCommand } from "./commands.ts";
import {
  ControlError,
  decodeRequest,
  encodeLine,
  encodeParts,
  errReply,
  LineSplitter,
  LiveStreamedResult,
  MAX_CLIENTS,
  MAX_REPLY_BYTES,
  MAX_REQUEST_BYTES,
  okReply,
  READ_ONLY_COMMANDS,
  type Reply,
  type RequestId,
  StreamedResult,
} from "./protocol.ts";

const log = logger("control");

/** Options of {@link ControlServer.start}. */
export interface ControlServerOptions {
  /** Mode of the socket file (default 0660: the owner and the socket's group). */
  mode?: number;
  /** Answer only the commands that look ({@link READ_ONLY_COMMANDS}); others are `forbidden`. */
  readOnly?: boolean;
}

/** Whether a request only looks (what a read-only socket answers). */
function readOnlyRequest(cmd: string, args: Record<string, unknown>): boolean {
  if (!READ_ONLY_COMMANDS.has(cmd)) return false;
  if (cmd === "role") return args.role === undefined;
  return cmd !== "log-level" || ((args.action ?? (args.level === undefined ? "get" : "set")) ===
    "get");
}

/** Why the control server could not start. */
export class ControlSetupError extends Error {
  /**
   * Create the error.
   * @param message for people
   */
  constructor(message: string) {
    super(message);
    this.name = "ControlSetupError";
  }
}

function dirname(p: string): string {
  const i = p.lastIndexOf("/");
  return i <= 0 ? (i === 0 ? "/" : ".") : p.slice(0, i);
}

/**
 * Make sure the socket's directory exists with mode 0750 and is not group-
 * or world-writable; remove a stale socket at `path`.
 * @throws {ControlSetupError}
 */
export async function prepareSocketPath(path: string): Promise<void> {
  if (new TextEncoder().encode(path).length > 107) {
    throw new ControlSetupError(`control socket path is longer than 107 bytes: ${path}`);
  }
  const dir = dirname(path);
  let st: Deno.FileInfo | undefined;
  try {
    st = await Deno.stat(dir);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (!st) {
    await Deno.mkdir(dir, { recursive: true, mode: 0o750 });
    await Deno.chmod(dir, 0o750); // mkdir applies the umask
    st = await Deno.stat(dir);
  }
  if (!st.isDirectory) throw new ControlSetupError(`${dir} is not a directory`);
  const mode = (st.mode ?? 0) & 0o7777;
  if (mode & 0o022) {
    throw new ControlSetupError(
      `refusing to create the control socket in ${dir}: the directory is ` +
        `${mode & 0o002 ? "world" : "group"}-writable (mode ${
          mode.toString(8).padStart(4, "0")
        }); ` +
        // a shared directory (sticky, like /tmp) is meant to stay writable: never advise chmod
        (mode & 0o1000
          ? `it is a shared directory: choose a path in a directory of its own, e.g. ` +
            `--control-socket ${dir === "/" ? "" : dir}/mcr/control.sock`
          : `run \`chmod 750 ${dir}\` or choose another --control-socket`),
    );
  }
  let ls: Deno.FileInfo;
  try {
    ls = await Deno.lstat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
  }
  if (!ls.isSocket) {
    throw new ControlSetupError(
      `${path} exists and is not a socket; remove it or choose another path`,
    );
  }
  try {
    const c = await Deno.connect({ transport: "unix", path });
    c.close();
    throw new ControlSetupError(
      `another mcr is already listening on ${path}; stop it or choose another --control-socket`,
    );
  } catch (e) {
    if (e instanceof ControlSetupError) throw e;
    // Nobody listening: a stale socket from a daemon that died.
    await Deno.remove(path);
    log.info("removed stale control socket {path}", { path });
  }
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

/** What {@link within} resolves with when time runs out. */
const TIMED_OUT = Symbol("timed out");

/**
 * `op`'s result, or {@link TIMED_OUT} after `ms`. A late failure of `op` is
 * ignored (the caller closes the connection, which fails the pending I/O).
 */
function within<T>(op: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  op.catch(() => {});
  let t: ReturnType<typeof setTimeout> | undefined;
  const timer = new Promise<typeof TIMED_OUT>((r) => t = setTimeout(() => r(TIMED_OUT), ms));
  return Promise.race([op, timer]).finally(() => clearTimeout(t));
}

/**
 * A client that sends no request for this long (ms) is disconnected (`top`
 * polls every second). Only complete requests count: bytes of an unfinished
 * line or blank lines do not keep a connection alive.
 */
export const IDLE_TIMEOUT_MS = 60_000;

/**
 * A request line must be complete this long (ms) after its first byte came,
 * and a reply (each part of a streamed one) must be taken by the client within
 * as long; otherwise the client gets a `timeout` error (when it can) and is
 * disconnected. A client sends a request in one write, so this only ever cuts
 * off clients that trickle bytes (slow loris) or do not read their replies.
 */
export const REQUEST_TIMEOUT_MS = 10_000;

/** A running control server. */
export class ControlServer implements AsyncDisposable {
  readonly #listener: Deno.Listener;
  readonly #conns = new Set<Deno.Conn>();
  readonly #handlers = new Set<Promise<void>>();
  readonly #accepting: Promise<void>;
  #closed = false;
  /** Disconnect a client after this long without a request (ms). */
  idleTimeoutMs: number = IDLE_TIMEOUT_MS;
  /** Disconnect a client whose request line or reply takes longer than this (ms). */
  requestTimeoutMs: number = REQUEST_TIMEOUT_MS;
  /** Answer only the commands that look ({@link READ_ONLY_COMMANDS}). */
  readOnly = false;

  private constructor(
    readonly path: string,
    listener: Deno.Listener,
    readonly ctx: ControlContext,
  ) {
    this.#listener = listener;
    this.#accepting = this.#accept();
  }

  /**
   * Prepare the directory, listen on `path`, serve `ctx`.
   * @throws {ControlSetupError} or a Deno error (permission) when it cannot
   */
  static async start(
    path: string,
    ctx: ControlContext,
    opts: ControlServerOptions = {},
  ): Promise<ControlServer> {
    await prepareSocketPath(path);
    const listener = Deno.listen({ transport: "unix", path });
    await Deno.chmod(path, opts.mode ?? 0o660);
    log.info(`${opts.readOnly ? "read-only " : ""}control socket listening on {path}`, { path });
    const server = new ControlServer(path, listener, ctx);
    server.readOnly = opts.readOnly ?? false;
    return server;
  }

  /** Number of connected clients. */
  get clients(): number {
    return this.#conns.size;
  }

  async #accept(): Promise<void> {
    while (!this.#closed) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch (e) {
        if (this.#closed) return;
        log.warn("control socket accept failed: {error}", { error: (e as Error).message });
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      const p = this.#serve(conn).finally(() => this.#handlers.delete(p));
      this.#handlers.add(p);
    }
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    if (this.#conns.size >= MAX_CLIENTS) {
      try {
        await writeAll(
          conn,
          encodeLine(errReply(null, "busy", `too many clients (${MAX_CLIENTS}); try again`)),
        );
      } catch { /* gone */ }
      try {
        conn.close();
      } catch { /* closed */ }
      return;
    }
    this.#conns.add(conn);
    const split = new LineSplitter(MAX_REQUEST_BYTES);
    const buf = new Uint8Array(16 * 1024);
    /** When the last request was answered (or the client connected). */
    let lastRequest = performance.now();
    /** When the first byte of the unfinished line came; null when no line is unfinished. */
    let partialSince: number | null = null;
    /** Send a line; false when the client does not take it in time. */
    const sendLine = async (line: Uint8Array): Promise<boolean> =>
      (await within(writeAll(conn, line), this.requestTimeoutMs)) !== TIMED_OUT;
    const send = (reply: Reply): Promise<boolean> => sendLine(encodeLine(reply));
    /**
     * Send every line of an answer (a live stream's as they come); false when
     * the client stops taking them. A write that fails ends the iteration
     * too: a live stream learns that its client went away.
     */
    const sendAll = async (
      lines: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
    ): Promise<boolean> => {
      for await (const line of lines) if (!(await sendLine(line))) return false;
      return true;
    };
    let ended = false;
    try {
      for (;;) {
        const now = performance.now();
        const idleLeft = lastRequest + this.idleTimeoutMs - now;
        const requestLeft = partialSince === null
          ? Infinity
          : partialSince + this.requestTimeoutMs - now;
        const n = await within(conn.read(buf), Math.max(0, Math.min(idleLeft, requestLeft)));
        if (n === TIMED_OUT) {
          if (requestLeft <= idleLeft) {
            const s = this.requestTimeoutMs / 1000;
            await send(errReply(null, "timeout", `request not completed within ${s} s`));
          }
          break;
        }
        if (n === null) {
          ended = true;
          break;
        }
        let answered = true;
        for (const ev of split.push(buf.subarray(0, n))) {
          // A blank line is no request: it neither gets a reply nor counts as activity.
          if ("line" in ev && ev.line.trim() === "") continue;
          const lines = "line" in ev ? await this.#handleLine(ev.line) : [encodeLine(errReply(
            null,
            "too_large",
            `request longer than ${MAX_REQUEST_BYTES} bytes; discarded up to the next newline`,
          ))];
          if (lines && !(await sendAll(lines))) {
            answered = false;
            break;
          }
          lastRequest = performance.now();
        }
        if (!answered) break;
        partialSince = split.pending ? (partialSince ?? performance.now()) : null;
      }
      // The stream ended in the middle of a line: answer it (usually a truncated request).
      const rest = ended ? split.end() : null;
      if (rest !== null) {
        const lines = await this.#handleLine(rest);
        if (lines) await sendAll(lines);
      }
    } catch (e) {
      if (
        !this.#closed && !(e instanceof Deno.errors.BrokenPipe) &&
        !(e instanceof Deno.errors.ConnectionReset) && !(e instanceof Deno.errors.BadResource)
      ) {
        log.debug("control client error: {error}", { error: (e as Error).message });
      }
    } finally {
      this.#conns.delete(conn);
      try {
        conn.close();
      } catch { /* closed */ }
    }
  }

  /**
   * Answer one line: the encoded lines of the reply (several for a streamed
   * one, produced as they are sent); null for a blank line.
   */
  async #handleLine(
    line: string,
  ): Promise<Iterable<Uint8Array> | AsyncIterable<Uint8Array> | null> {
    if (line.trim() === "") return null;
    const d = decodeRequest(line);
    if (!d.ok) return [encodeLine(d.reply)];
    const { id, cmd } = d.req;
    if (this.readOnly && !readOnlyRequest(cmd, d.req.args ?? {})) {
      return [encodeLine(errReply(
        id,
        "forbidden",
        `${cmd} changes the relay; this control socket (${this.path}) is read-only: use the ` +
          "control socket",
      ))];
    }
    let result: unknown;
    try {
      result = await runCommand(this.ctx, cmd, d.req.args ?? {});
    } catch (e) {
      return [encodeLine(this.#failure(id, cmd, e))];
    }
    if (result instanceof StreamedResult) return this.#parts(id, cmd, result);
    if (result instanceof LiveStreamedResult) return this.#liveParts(id, cmd, result);
    // A string's length never exceeds its UTF-8 size: most too long replies are never encoded.
    const text = JSON.stringify(okReply(id, result));
    const bytes = text.length <= MAX_REPLY_BYTES ? new TextEncoder().encode(text + "\n") : null;
    if (bytes && bytes.length - 1 <= MAX_REPLY_BYTES) return [bytes];
    return [encodeLine(errReply(
      id,
      "reply_too_large",
      `the reply to ${cmd} would be more than the ${MAX_REPLY_BYTES} bytes ` +
        `one reply may hold: ask for a stream (args.stream, as \`ctl\` does), a filter, a ` +
        `summary or a limit`,
    ))];
  }

  /** The parts of a streamed reply; an error while producing them ends it with an error reply. */
  *#parts(id: RequestId, cmd: string, result: StreamedResult): Generator<Uint8Array> {
    const parts = encodeParts(id, result.records);
    for (;;) {
      let next: IteratorResult<Uint8Array>;
      try {
        next = parts.next();
      } catch (e) {
        yield encodeLine(this.#failure(id, cmd, e));
        return;
      }
      if (next.done) return;
      yield next.value;
    }
  }

  /**
   * The parts of a live stream, as its chunks come, then an empty last part;
   * an error while producing them ends it with an error reply.
   */
  async *#liveParts(id: RequestId, cmd: string, result: LiveStreamedResult) {
    try {
      for await (const chunk of result.chunks) yield* encodeParts(id, chunk, undefined, false);
    } catch (e) {
      yield encodeLine(this.#failure(id, cmd, e));
      return;
    }
    yield* encodeParts(id, []);
  }

  /** The error reply for a command that threw `e` (logged unless it is a ControlError). */
  #failure(id: RequestId, cmd: string, e: unknown): Reply {
    if (e instanceof ControlError) return errReply(id, e.code, e.message, e.issues);
    log.error("control command {cmd} failed: {error}", {
      cmd,
      error: (e as Error)?.stack ?? String(e),
    });
    return errReply(id, "internal", (e as Error)?.message ?? String(e));
  }

  /** Stop accepting, close every client, remove the socket file. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#listener.close();
    } catch { /* closed */ }
    for (const c of this.#conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    await this.#accepting;
    await Promise.allSettled([...this.#handlers]);
    try {
      await Deno.remove(this.path);
    } catch { /* gone */ }
  }

  /** Same as close(). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
