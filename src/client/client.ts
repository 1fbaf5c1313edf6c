/**
 * A control-socket client: connect, send requests, match replies by id.
 * Many requests may be in flight on one connection.
 *
 * ```ts
 * await using c = await ControlClient.connect("/run/mcr/control.sock");
 * const r = await c.request("list");
 * if (r.ok) console.log(r.result);
 * for await (const record of c.stream("stats", { interface: "eth0" })) console.log(record);
 * ```
 *
 * @module
 */
import {
  encodeLine,
  type ErrReply,
  LineSplitter,
  MAX_REPLY_BYTES,
  PROTOCOL_VERSION,
  type Reply,
} from "../control/protocol.ts";

/** The client could not talk to the daemon (connect, timeout, protocol). */
export class ControlConnectionError extends Error {
  /**
   * Create the error.
   * @param message for people
   */
  constructor(message: string) {
    super(message);
    this.name = "ControlConnectionError";
  }
}

/** A streamed request refused by the daemon: its error reply. */
export class ControlRefusedError extends Error {
  /**
   * Create the error.
   * @param reply the daemon's error reply
   */
  constructor(readonly reply: ErrReply) {
    super(reply.error.message);
    this.name = "ControlRefusedError";
  }
}

/**
 * Parts of a streamed reply the client holds before it stops reading the
 * socket until the consumer takes one (so a slow consumer slows the daemon
 * down instead of filling memory).
 */
const MAX_QUEUED_PARTS = 4;

/** Where the reader delivers the replies to one request. */
interface Waiter {
  /** A reply (of a stream: one part) arrived. */
  deliver(r: Reply): void;
  /** The connection failed. */
  fail(e: Error): void;
}

/** A connection to the daemon's control socket. */
export class ControlClient implements AsyncDisposable {
  readonly #conn: Deno.Conn;
  readonly #pending = new Map<string | number, Waiter>();
  /** Resolved when the reader may go on (a stream's consumer took a part). */
  #resume: PromiseWithResolvers<void> | null = null;
  #nextId = 1;
  #closed = false;
  readonly #reading: Promise<void>;

  private constructor(conn: Deno.Conn, readonly timeoutMs: number) {
    this.#conn = conn;
    this.#reading = this.#read();
  }

  /**
   * Connect to a control socket.
   * @throws {ControlConnectionError} saying why (no daemon, permission)
   */
  static async connect(path: string, timeoutMs = 10_000): Promise<ControlClient> {
    try {
      const conn = await Deno.connect({ transport: "unix", path });
      return new ControlClient(conn, timeoutMs);
    } catch (e) {
      const why = e instanceof Deno.errors.NotFound
        ? "no such socket (is the daemon running? is the path right?)"
        : e instanceof Deno.errors.ConnectionRefused
        ? "connection refused (the daemon is not running; a stale socket is left)"
        : e instanceof Deno.errors.PermissionDenied
        ? "permission denied (the socket is 0660: run as its owner or group)"
        : (e as Error).message;
      throw new ControlConnectionError(`cannot connect to ${path}: ${why}`);
    }
  }

  async #read(): Promise<void> {
    const split = new LineSplitter(MAX_REPLY_BYTES);
    const buf = new Uint8Array(64 * 1024);
    let error = "the daemon closed the connection";
    try {
      for (;;) {
        const n = await this.#conn.read(buf);
        if (n === null) break;
        for (const ev of split.push(buf.subarray(0, n))) {
          if (!("line" in ev)) {
            // Replies come in order: this one answers the oldest request.
            this.#oldest()?.fail(
              new ControlConnectionError(
                `the daemon sent a reply longer than ${MAX_REPLY_BYTES} bytes`,
              ),
            );
            continue;
          }
          let reply: Reply;
          try {
            reply = JSON.parse(ev.line);
          } catch {
            error = "the daemon sent a line that is not JSON";
            continue;
          }
          const key = reply.id ?? "";
          const w = this.#pending.get(key);
          if (w) {
            if (!(reply.ok && reply.more)) this.#pending.delete(key);
            w.deliver(reply);
          } else if (reply.id === null) {
            // An error about a request the daemon could not read (e.g. busy).
            this.#oldest()?.deliver(reply);
          }
        }
        if (this.#resume) await this.#resume.promise;
      }
    } catch (e) {
      if (!this.#closed) error = `connection error: ${(e as Error).message}`;
    }
    for (const w of this.#pending.values()) w.fail(new ControlConnectionError(error));
    this.#pending.clear();
  }

  /** The oldest request still waiting, taken off the list. */
  #oldest(): Waiter | undefined {
    const first = this.#pending.entries().next();
    if (first.done) return undefined;
    this.#pending.delete(first.value[0]);
    return first.value[1];
  }

  /** Send a request line. */
  async #send(cmd: string, id: number, args: Record<string, unknown>): Promise<void> {
    const data = encodeLine({ v: PROTOCOL_VERSION, id, cmd, args });
    let off = 0;
    while (off < data.length) off += await this.#conn.write(data.subarray(off));
  }

  /**
   * Send a command and wait for its reply.
   * @throws {ControlConnectionError} on timeout or a lost connection
   */
  async request<T = unknown>(cmd: string, args: Record<string, unknown> = {}): Promise<Reply<T>> {
    if (this.#closed) throw new ControlConnectionError("client is closed");
    const id = this.#nextId++;
    const reply = new Promise<Reply>((resolve, reject) => {
      this.#pending.set(id, { deliver: resolve, fail: reject });
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new ControlConnectionError(`no reply to "${cmd}" within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
    });
    try {
      await this.#send(cmd, id, args);
      return await Promise.race([reply, timeout]) as Reply<T>;
    } catch (e) {
      this.#pending.delete(id);
      if (e instanceof ControlConnectionError) throw e;
      throw new ControlConnectionError(`sending "${cmd}" failed: ${(e as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Send a command with `stream: true` and yield its records as the parts
   * arrive (`list` and `stats`; see docs/control.md). Each part must arrive
   * within the timeout of the previous one. Stopping the iteration early
   * closes the connection (the rest of the stream would block it).
   * @throws {ControlRefusedError} when the daemon refuses the request
   * @throws {ControlConnectionError} on timeout, a lost connection, or a daemon that does not stream
   */
  async *stream<T = unknown>(
    cmd: string,
    args: Record<string, unknown> = {},
  ): AsyncGenerator<T[], void, undefined> {
    if (this.#closed) throw new ControlConnectionError("client is closed");
    const id = this.#nextId++;
    const queue: (Reply | Error)[] = [];
    let wake: (() => void) | null = null;
    const push = (x: Reply | Error) => {
      queue.push(x);
      if (queue.length >= MAX_QUEUED_PARTS) this.#resume ??= Promise.withResolvers<void>();
      wake?.();
    };
    this.#pending.set(id, { deliver: push, fail: push });
    let done = false;
    try {
      await this.#send(cmd, id, { ...args, stream: true }).catch((e) => {
        throw new ControlConnectionError(`sending "${cmd}" failed: ${(e as Error).message}`);
      });
      while (!done) {
        if (queue.length === 0) {
          let timer: ReturnType<typeof setTimeout> | undefined;
          const arrived = await new Promise<boolean>((res) => {
            wake = () => res(true);
            timer = setTimeout(() => res(false), this.timeoutMs);
          });
          wake = null;
          clearTimeout(timer);
          if (!arrived) {
            throw new ControlConnectionError(
              `no reply to "${cmd}" within ${this.timeoutMs} ms`,
            );
          }
        }
        const next = queue.shift()!;
        if (queue.length < MAX_QUEUED_PARTS && this.#resume) {
          this.#resume.resolve();
          this.#resume = null;
        }
        if (next instanceof Error) throw next;
        done = !next.ok || next.more !== true;
        if (!next.ok) throw new ControlRefusedError(next);
        const records = (next.result as { records?: unknown } | null)?.records;
        if (!Array.isArray(records)) {
          throw new ControlConnectionError(
            `the daemon answered "${cmd}" without a stream (an older mcr?)`,
          );
        }
        yield records as T[];
      }
    } finally {
      this.#pending.delete(id);
      if (!done) await this.close(); // the rest of the stream would be taken for other replies
    }
  }

  /** Close the connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#resume?.resolve();
    try {
      this.#conn.close();
    } catch { /* closed */ }
    await this.#reading;
  }

  /** Same as close(). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
