/**
 * The control protocol: one JSON object per line in each direction over a
 * Unix stream socket. See docs/control.md for the reference.
 *
 * Request:  `{"v":1,"id":7,"cmd":"list","args":{}}`
 * Reply:    `{"v":1,"id":7,"ok":true,"result":...}`
 * Error:    `{"v":1,"id":7,"ok":false,"error":{"code":"not_found","message":"..."}}`
 *
 * A reply is one line of at most {@link MAX_REPLY_BYTES}. A request that
 * asks for a stream (`list`/`stats` with `"stream":true`) is answered in
 * parts instead, each at most {@link MAX_PART_BYTES} of records unless one
 * record alone is larger ({@link encodeParts}):
 *
 * Part:     `{"v":1,"id":7,"ok":true,"more":true,"result":{"records":[...]}}`
 * Last:     `{"v":1,"id":7,"ok":true,"result":{"records":[...]}}`
 *
 * `capture` always streams, over time ({@link LiveStreamedResult}): its
 * parts are sent as its records come, and its last part is empty.
 *
 * @module
 */
import { z } from "zod";

/** Protocol version spoken by this build. */
export const PROTOCOL_VERSION = 1;

/** Largest request line accepted, in bytes (the newline not counted). */
export const MAX_REQUEST_BYTES = 64 * 1024;

/**
 * Largest one-line reply the daemon sends, in bytes (the newline not
 * counted); a larger one is answered `reply_too_large` instead. Today's
 * largest `stats` (4096 rules, 16,384 outputs) is about 8 MB; clients
 * before streaming read lines of up to 64 MiB.
 */
export const MAX_REPLY_BYTES = 16 * 1024 * 1024;

/**
 * Records per part of a streamed reply: a part holds records until the next
 * one would take it past this many bytes (envelope included), so it is at most
 * this long unless a single record is longer (a rule with 64 outputs is about
 * 25 KB).
 */
export const MAX_PART_BYTES = 64 * 1024;

/** Most clients connected at once; more are answered `busy` and closed. */
export const MAX_CLIENTS = 256;

/** Default control socket path (daemon and client). */
export const DEFAULT_CONTROL_SOCKET = "/run/mcr/control.sock";

/** Command names understood by the daemon. */
export const COMMANDS = [
  "version",
  "ping",
  "list",
  "add",
  "remove",
  "add-output",
  "remove-output",
  "diff",
  "stats",
  "workers",
  "log-level",
  "role",
  "reload",
  "check",
  "capture",
] as const;

/**
 * Commands a read-only control socket answers (`control.readonly_socket`):
 * they look, never change. `log-level` only reads there (`action: "get"`),
 * `role` too (without `args.role`).
 */
export const READ_ONLY_COMMANDS: ReadonlySet<string> = new Set([
  "version",
  "ping",
  "list",
  "stats",
  "workers",
  "check",
  "diff",
  "log-level",
  "role",
]);

/** A command name. */
export type Command = (typeof COMMANDS)[number];

/** Error codes of a failed reply. */
export type ErrorCode =
  /** Not a JSON object with `v`, `id`, `cmd` as documented. */
  | "bad_request"
  /** `v` is not a version this daemon speaks. */
  | "unsupported_version"
  /** `cmd` is not a known command. */
  | "unknown_command"
  /** The request line is longer than {@link MAX_REQUEST_BYTES}. */
  | "too_large"
  /**
   * The reply would be longer than {@link MAX_REPLY_BYTES}: ask for a stream,
   * a filter, a summary or a limit (`list`/`stats`).
   */
  | "reply_too_large"
  /** `args` are wrong for the command. */
  | "bad_args"
  /** `add`: the rule is invalid or conflicts (see `error.issues`). */
  | "invalid_rule"
  /** `reload`/`check`: the file is unreadable or invalid (see `error.issues`). */
  | "invalid_config"
  /**
   * `reload`/`check`: the daemon does not read that path for a client (only its
   * configuration file and `*.json` files in the same directory).
   */
  | "forbidden"
  /** A request line was not completed in time; the connection is closed. */
  | "timeout"
  /** `remove`, `add-output`, `remove-output`: no such rule or output. */
  | "not_found"
  /**
   * A change to a rule defined in the configuration files while a runtime
   * rules file keeps the ctl changes: change the file, or pass `transient`.
   */
  | "defined_in_file"
  /** The runtime rules file could not be written: nothing was changed. */
  | "not_saved"
  /** Too many clients. */
  | "busy"
  /** The daemon failed to carry out a valid request. */
  | "internal";

/** Request id: echoed in the reply. */
export type RequestId = string | number | null;

/** A request. */
export interface Request {
  /** Protocol version ({@link PROTOCOL_VERSION}). */
  v: number;
  /** Chosen by the client, echoed in the reply. */
  id: string | number;
  /** Command. */
  cmd: string;
  /** Command arguments (an object; default {}). */
  args?: Record<string, unknown>;
}

/** Structured error of a failed reply. */
export interface ErrorBody {
  /** Machine-readable code. */
  code: ErrorCode;
  /** For people. */
  message: string;
  /** Config issues (invalid_rule, invalid_config), as `cli.ts check --json` gives them. */
  issues?: unknown[];
}

/** A successful reply. */
export interface OkReply<T = unknown> {
  /** Protocol version. */
  v: number;
  /** The request's id (null when it could not be read). */
  id: RequestId;
  /** true. */
  ok: true;
  /** Command result (of a streamed reply: `{records: [...]}`, one part of them). */
  result: T;
  /** Present (true) on every part of a streamed reply but the last. */
  more?: true;
}

/** A failed reply. */
export interface ErrReply {
  /** Protocol version. */
  v: number;
  /** The request's id (null when it could not be read). */
  id: RequestId;
  /** false. */
  ok: false;
  /** What went wrong. */
  error: ErrorBody;
}

/** Any reply. */
export type Reply<T = unknown> = OkReply<T> | ErrReply;

/** An error a command handler throws to produce a structured error reply. */
export class ControlError extends Error {
  /**
   * Create the error.
   * @param code error code
   * @param message for people
   * @param issues config issues, when relevant
   */
  constructor(readonly code: ErrorCode, message: string, readonly issues?: unknown[]) {
    super(message);
    this.name = "ControlError";
  }
}

const RequestSchema = z.object({
  v: z.number(),
  id: z.union([z.string().max(256), z.number()]),
  cmd: z.string().max(64),
  args: z.record(z.string(), z.unknown()).optional(),
});

/** Best-effort id of a value that failed validation (so the error reply can carry it). */
function salvageId(v: unknown): RequestId {
  if (typeof v !== "object" || v === null) return null;
  const id = (v as Record<string, unknown>).id;
  return typeof id === "number" || (typeof id === "string" && id.length <= 256) ? id : null;
}

/**
 * Decode one request line. Returns the request, or the error reply to send.
 */
export function decodeRequest(
  line: string,
): { ok: true; req: Request } | { ok: false; reply: ErrReply } {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (e) {
    return {
      ok: false,
      reply: errReply(null, "bad_request", `not valid JSON: ${(e as Error).message}`),
    };
  }
  const id = salvageId(value);
  const p = RequestSchema.safeParse(value);
  if (!p.success) {
    const what = p.error.issues.map((i) => `${i.path.join(".") || "request"}: ${i.message}`)
      .join("; ");
    return {
      ok: false,
      reply: errReply(
        id,
        "bad_request",
        `expected {"v":${PROTOCOL_VERSION},"id":...,"cmd":"...","args":{...}} (${what})`,
      ),
    };
  }
  if (p.data.v !== PROTOCOL_VERSION) {
    return {
      ok: false,
      reply: errReply(
        id,
        "unsupported_version",
        `protocol version ${p.data.v} is not supported (this daemon speaks ${PROTOCOL_VERSION})`,
      ),
    };
  }
  return { ok: true, req: p.data };
}

/** Build a successful reply. */
export function okReply<T>(id: RequestId, result: T): OkReply<T> {
  return { v: PROTOCOL_VERSION, id, ok: true, result };
}

/** Build an error reply. */
export function errReply(
  id: RequestId,
  code: ErrorCode,
  message: string,
  issues?: unknown[],
): ErrReply {
  return {
    v: PROTOCOL_VERSION,
    id,
    ok: false,
    error: issues ? { code, message, issues } : { code, message },
  };
}

/** Encode a message as one line (JSON + "\n"). */
export function encodeLine(m: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(m) + "\n");
}

/**
 * A command result to be sent as a stream of records ({@link encodeParts}):
 * what a handler returns when the request asked for a stream. The records
 * are produced as they are sent, so a large answer is never one string.
 */
export class StreamedResult {
  /**
   * Wrap the records.
   * @param records plain JSON values, produced lazily
   */
  constructor(readonly records: Iterable<unknown>) {}
}

/**
 * A command result whose records come over time (`capture`): each chunk is
 * sent as parts as soon as it comes ({@link encodeParts} with `final`
 * false), then an empty last part when the chunks end. Ending the
 * iteration early (the client went away) is how the command learns to stop.
 */
export class LiveStreamedResult {
  /**
   * Wrap the chunks.
   * @param chunks arrays of plain JSON values, as they come
   */
  constructor(readonly chunks: AsyncIterable<unknown[]>) {}
}

/**
 * The lines of a streamed reply to request `id`: parts of at most `max` bytes
 * (a part holds at least one record, so a single longer record makes a longer
 * part), every one but the last marked `"more":true`. There is always a last
 * part, with no records when `records` is empty. With `final` false, the last
 * part is marked `"more":true` too (a chunk of a {@link LiveStreamedResult}).
 */
export function* encodeParts(
  id: RequestId,
  records: Iterable<unknown>,
  max: number = MAX_PART_BYTES,
  final = true,
): Generator<Uint8Array> {
  const enc = new TextEncoder();
  const prefix = `{"v":${PROTOCOL_VERSION},"id":${JSON.stringify(id)},"ok":true,`;
  const more = enc.encode(`${prefix}"more":true,"result":{"records":[`);
  const last = enc.encode(`${prefix}"result":{"records":[`);
  const tail = enc.encode("]}}\n");
  const room = max - more.length - tail.length;
  let held: Uint8Array[] = [];
  let size = 0;
  const join = (head: Uint8Array): Uint8Array => {
    const out = new Uint8Array(head.length + size + tail.length);
    out.set(head);
    let o = head.length;
    held.forEach((b, i) => {
      if (i > 0) out[o++] = 44; // ","
      out.set(b, o);
      o += b.length;
    });
    out.set(tail, o);
    held = [];
    size = 0;
    return out;
  };
  for (const r of records) {
    const b = enc.encode(JSON.stringify(r));
    if (held.length > 0 && size + 1 + b.length > room) yield join(more);
    size += (held.length > 0 ? 1 : 0) + b.length;
    held.push(b);
  }
  yield join(final ? last : more);
}

/**
 * Splits a byte stream into lines with a size cap. `push` returns the
 * complete lines found; a line longer than `max` bytes is reported once as
 * `{tooLarge: true}` and its remaining bytes are discarded up to the next
 * newline (the connection stays usable).
 */
export class LineSplitter {
  #parts: Uint8Array[] = [];
  #size = 0;
  #discarding = false;
  readonly #dec = new TextDecoder();

  /**
   * Create a splitter.
   * @param max largest line in bytes
   */
  constructor(readonly max: number = MAX_REQUEST_BYTES) {}

  /** Whether part of a line (or of a line being discarded) has arrived without its newline. */
  get pending(): boolean {
    return this.#size > 0 || this.#discarding;
  }

  /** Feed bytes; returns the events found. */
  push(chunk: Uint8Array): ({ line: string } | { tooLarge: true })[] {
    const out: ({ line: string } | { tooLarge: true })[] = [];
    let start = 0;
    while (start <= chunk.length) {
      const nl = chunk.indexOf(10, start);
      const end = nl < 0 ? chunk.length : nl;
      const piece = chunk.subarray(start, end);
      if (!this.#discarding) {
        if (this.#size + piece.length > this.max) {
          out.push({ tooLarge: true });
          this.#parts = [];
          this.#size = 0;
          this.#discarding = true;
        } else if (piece.length > 0) {
          this.#parts.push(piece.slice());
          this.#size += piece.length;
        }
      }
      if (nl < 0) break;
      if (this.#discarding) this.#discarding = false;
      else out.push({ line: this.#take() });
      start = nl + 1;
    }
    return out;
  }

  /** At end of stream: the unterminated last line, if any (a truncated request). */
  end(): string | null {
    if (this.#discarding || this.#size === 0) return null;
    return this.#take();
  }

  #take(): string {
    const buf = new Uint8Array(this.#size);
    let o = 0;
    for (const p of this.#parts) {
      buf.set(p, o);
      o += p.length;
    }
    this.#parts = [];
    this.#size = 0;
    return this.#dec.decode(buf).replace(/\r$/, "");
  }
}
