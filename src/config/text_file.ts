/**
 * Reading a small text file that someone else may have pointed us at: only a
 * regular file (a FIFO would block the reader until a writer comes,
 * `/dev/zero` never ends), at most a given number of bytes (checked before
 * reading, and enforced while reading for files whose size the kernel does
 * not report, like those in /proc), and UTF-8.
 *
 * Errors say why in words of their own; they never contain the file's
 * content.
 *
 * @module
 */

/** Why a text file was not read. */
export class TextFileError extends Error {
  /**
   * Create the error.
   * @param message why, for people (names no content of the file)
   */
  constructor(message: string) {
    super(message);
    this.name = "TextFileError";
  }
}

/** How much is read at a time. */
const CHUNK_BYTES = 64 * 1024;

/** What kind of file `st` is, for "not a regular file (a FIFO)". */
function kindOf(st: Deno.FileInfo): string {
  if (st.isDirectory) return "a directory";
  if (st.isFifo) return "a FIFO";
  if (st.isCharDevice) return "a character device";
  if (st.isBlockDevice) return "a block device";
  if (st.isSocket) return "a socket";
  return "not a file";
}

function refuseIrregular(st: Deno.FileInfo): void {
  if (!st.isFile) throw new TextFileError(`not a regular file (${kindOf(st)})`);
}

/**
 * Read a regular file of at most `maxBytes` bytes as UTF-8 text.
 *
 * The path is `stat`ed first, so that nothing but a regular file is ever
 * opened; the open file is checked again (the same file, still regular) and
 * read in chunks up to `maxBytes + 1` bytes.
 *
 * @param path file to read
 * @param maxBytes largest size accepted
 * @throws {TextFileError} not a regular file, too large, or not UTF-8
 * @throws Deno errors from stat/open/read (NotFound, PermissionDenied, NotCapable, ...)
 */
export async function readTextFileBounded(path: string | URL, maxBytes: number): Promise<string> {
  const before = await Deno.stat(path);
  refuseIrregular(before);
  if (before.size > maxBytes) {
    throw new TextFileError(`larger than ${maxBytes} bytes (${before.size} bytes)`);
  }
  using file = await Deno.open(path, { read: true });
  const st = await file.stat();
  refuseIrregular(st);
  if (st.ino !== before.ino || st.dev !== before.dev) {
    throw new TextFileError("replaced while it was being opened; try again");
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const buf = new Uint8Array(Math.min(CHUNK_BYTES, maxBytes + 1 - total));
    const n = await file.read(buf);
    if (n === null) break;
    chunks.push(buf.subarray(0, n));
    total += n;
    if (total > maxBytes) throw new TextFileError(`larger than ${maxBytes} bytes`);
  }
  const bytes = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    bytes.set(c, off);
    off += c.length;
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new TextFileError("not UTF-8 text");
  }
}
