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
 * 0660.
 *
 * @module
 */
import { logger } from "../log.ts";
import { type ControlContext, runCommand } from "./commands.ts";
import {
  ControlError,
  decodeRequest,
  encodeLine,
  errReply,
  LineSplitter,
  MAX_CLIENTS,
  MAX_REQUEST_BYTES,
  okReply,
  type Reply,
} from "./protocol.ts";

const log = logger("control");

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
        `run \`chmod 750 ${dir}\` or choose another --control-socket`,
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

/** A client silent for this long (ms) is disconnected (`top` polls every second). */
export const IDLE_TIMEOUT_MS = 60_000;

/** A running control server. */
export class ControlServer implements AsyncDisposable {
  readonly #listener: Deno.Listener;
  readonly #conns = new Set<Deno.Conn>();
  readonly #handlers = new Set<Promise<void>>();
  readonly #accepting: Promise<void>;
  #closed = false;
  /** Disconnect a client after this long without a request (ms). */
  idleTimeoutMs: number = IDLE_TIMEOUT_MS;

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
  static async start(path: string, ctx: ControlContext): Promise<ControlServer> {
    await prepareSocketPath(path);
    const listener = Deno.listen({ transport: "unix", path });
    await Deno.chmod(path, 0o660);
    log.info("control socket listening on {path}", { path });
    return new ControlServer(path, listener, ctx);
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
    // A client that says nothing for IDLE_TIMEOUT_MS is disconnected, so idle
    // connections cannot hold the MAX_CLIENTS slots for ever.
    let idle: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      clearTimeout(idle);
      idle = setTimeout(() => {
        try {
          conn.close();
        } catch { /* closed */ }
      }, this.idleTimeoutMs);
    };
    try {
      for (;;) {
        arm();
        const n = await conn.read(buf);
        if (n === null) break;
        for (const ev of split.push(buf.subarray(0, n))) {
          const reply = "line" in ev ? await this.#handleLine(ev.line) : errReply(
            null,
            "too_large",
            `request longer than ${MAX_REQUEST_BYTES} bytes; discarded up to the next newline`,
          );
          if (reply) await writeAll(conn, encodeLine(reply));
        }
      }
      // A last line without its newline: answer it (usually a truncated request).
      const rest = split.end();
      if (rest !== null) {
        const reply = await this.#handleLine(rest);
        if (reply) await writeAll(conn, encodeLine(reply));
      }
    } catch (e) {
      if (
        !this.#closed && !(e instanceof Deno.errors.BrokenPipe) &&
        !(e instanceof Deno.errors.ConnectionReset) && !(e instanceof Deno.errors.BadResource)
      ) {
        log.debug("control client error: {error}", { error: (e as Error).message });
      }
    } finally {
      clearTimeout(idle);
      this.#conns.delete(conn);
      try {
        conn.close();
      } catch { /* closed */ }
    }
  }

  /** Answer one line; null for a blank line. */
  async #handleLine(line: string): Promise<Reply | null> {
    if (line.trim() === "") return null;
    const d = decodeRequest(line);
    if (!d.ok) return d.reply;
    const { id, cmd } = d.req;
    try {
      return okReply(id, await runCommand(this.ctx, cmd, d.req.args ?? {}));
    } catch (e) {
      if (e instanceof ControlError) return errReply(id, e.code, e.message, e.issues);
      log.error("control command {cmd} failed: {error}", {
        cmd,
        error: (e as Error)?.stack ?? String(e),
      });
      return errReply(id, "internal", (e as Error)?.message ?? String(e));
    }
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
