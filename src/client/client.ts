/**
 * A control-socket client: connect, send requests, match replies by id.
 * Many requests may be in flight on one connection.
 *
 * ```ts
 * await using c = await ControlClient.connect("/run/mcr/control.sock");
 * const r = await c.request("list");
 * if (r.ok) console.log(r.result);
 * ```
 *
 * @module
 */
import { encodeLine, LineSplitter, PROTOCOL_VERSION, type Reply } from "../control/protocol.ts";

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

/** A connection to the daemon's control socket. */
export class ControlClient implements AsyncDisposable {
  readonly #conn: Deno.Conn;
  readonly #pending = new Map<
    string | number,
    { resolve: (r: Reply) => void; reject: (e: Error) => void }
  >();
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
    const split = new LineSplitter(64 * 1024 * 1024);
    const buf = new Uint8Array(64 * 1024);
    let error = "the daemon closed the connection";
    try {
      for (;;) {
        const n = await this.#conn.read(buf);
        if (n === null) break;
        for (const ev of split.push(buf.subarray(0, n))) {
          if (!("line" in ev)) continue;
          let reply: Reply;
          try {
            reply = JSON.parse(ev.line);
          } catch {
            error = "the daemon sent a line that is not JSON";
            continue;
          }
          const key = reply.id ?? "";
          const p = this.#pending.get(key);
          if (p) {
            this.#pending.delete(key);
            p.resolve(reply);
          } else if (reply.id === null && this.#pending.size > 0) {
            // An error about a request the daemon could not read (e.g. busy).
            const [k, first] = this.#pending.entries().next().value!;
            this.#pending.delete(k);
            first.resolve(reply);
          }
        }
      }
    } catch (e) {
      if (!this.#closed) error = `connection error: ${(e as Error).message}`;
    }
    for (const p of this.#pending.values()) p.reject(new ControlConnectionError(error));
    this.#pending.clear();
  }

  /**
   * Send a command and wait for its reply.
   * @throws {ControlConnectionError} on timeout or a lost connection
   */
  async request<T = unknown>(cmd: string, args: Record<string, unknown> = {}): Promise<Reply<T>> {
    if (this.#closed) throw new ControlConnectionError("client is closed");
    const id = this.#nextId++;
    const reply = new Promise<Reply>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new ControlConnectionError(`no reply to "${cmd}" within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
    });
    try {
      const data = encodeLine({ v: PROTOCOL_VERSION, id, cmd, args });
      let off = 0;
      while (off < data.length) off += await this.#conn.write(data.subarray(off));
      return await Promise.race([reply, timeout]) as Reply<T>;
    } catch (e) {
      this.#pending.delete(id);
      if (e instanceof ControlConnectionError) throw e;
      throw new ControlConnectionError(`sending "${cmd}" failed: ${(e as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Close the connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
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
