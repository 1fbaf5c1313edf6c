/**
 * The control protocol: one JSON object per line in each direction over a
 * Unix stream socket. See docs/control.md for the reference.
 *
 * Request:  `{"v":1,"id":7,"cmd":"list","args":{}}`
 * Reply:    `{"v":1,"id":7,"ok":true,"result":...}`
 * Error:    `{"v":1,"id":7,"ok":false,"error":{"code":"not_found","message":"..."}}`
 *
 * @module
 */
import { z } from "zod";

/** Protocol version spoken by this build. */
export const PROTOCOL_VERSION = 1;

/** Largest request line accepted, in bytes (the newline not counted). */
export const MAX_REQUEST_BYTES = 64 * 1024;

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
  "stats",
  "workers",
  "log-level",
  "reload",
  "check",
] as const;

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
  /** `remove`: no such rule. */
  | "not_found"
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
  /** Command result. */
  result: T;
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
