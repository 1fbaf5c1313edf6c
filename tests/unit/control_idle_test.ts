/**
 * The control server disconnects clients that stay silent, so idle
 * connections cannot hold the client slots; a client that keeps asking stays.
 */
import assert from "node:assert/strict";
import { ControlServer } from "../../src/control/server.ts";
import type { ControlContext } from "../../src/control/commands.ts";

Deno.test({
  name:
    "control server: a silent client is disconnected after the idle timeout, a chatty one is not",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "mcr-idle-" });
    await Deno.chmod(dir, 0o750);
    const path = `${dir}/sock/control.sock`;
    // `ping` needs only startedAt; no request in this test touches the relay.
    const ctx = { startedAt: performance.now() } as unknown as ControlContext;
    const server = await ControlServer.start(path, ctx);
    server.idleTimeoutMs = 300;
    try {
      const silent = await Deno.connect({ transport: "unix", path });
      const chatty = await Deno.connect({ transport: "unix", path });
      const enc = new TextEncoder();
      const buf = new Uint8Array(4096);
      // The chatty client pings every 100 ms while the silent one waits to be dropped.
      let stop = false;
      const pinger = (async () => {
        let id = 0;
        while (!stop) {
          await chatty.write(enc.encode(JSON.stringify({ v: 1, id: ++id, cmd: "ping" }) + "\n"));
          const n = await chatty.read(buf);
          assert.ok(n !== null && n > 0, "the chatty client got its reply");
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      const got = await silent.read(buf); // resolves when the server closes it
      assert.equal(got, null, "the silent client was disconnected");
      stop = true;
      await pinger;
      assert.equal(server.clients, 1, "only the chatty client is still connected");
      silent.close();
      chatty.close();
    } finally {
      await server.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** Resolves with `p`'s outcome, or rejects when it takes longer than `ms`. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(t));
}

/**
 * Every line the server sends until it closes the connection (which closes
 * `conn`). A server that closes a connection with bytes of the client still
 * unread (a trickling client's next byte) makes the kernel reset it: after
 * the lines already received, that is the end too.
 */
async function readToEnd(conn: Deno.Conn): Promise<string[]> {
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(4096);
  try {
    for (let n; (n = await conn.read(buf)) !== null;) chunks.push(buf.slice(0, n));
  } catch (e) {
    if (!(e instanceof Deno.errors.ConnectionReset)) throw e;
  }
  try {
    conn.close();
  } catch { /* already closed */ }
  const text = new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
  return text.split("\n").filter(Boolean);
}

/** Write `bytes` one at a time, `gapMs` apart, until the server closes the connection. */
async function trickle(conn: Deno.Conn, bytes: string, gapMs: number): Promise<number> {
  const enc = new TextEncoder();
  let sent = 0;
  try {
    for (let i = 0; i < 2000; i++) {
      await conn.write(enc.encode(bytes[i % bytes.length]));
      sent++;
      await new Promise((r) => setTimeout(r, gapMs));
    }
  } catch { /* closed by the server */ }
  return sent;
}

Deno.test({
  name: "control server: slow-loris clients are cut off (request deadline; idle counts requests)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "mcr-loris-" });
    await Deno.chmod(dir, 0o750);
    const path = `${dir}/sock/control.sock`;
    const ctx = { startedAt: performance.now() } as unknown as ControlContext;
    const server = await ControlServer.start(path, ctx);
    try {
      // A request trickling in one byte every 50 ms never completes: cut at the deadline,
      // though bytes keep coming (the idle timeout alone would never fire).
      server.requestTimeoutMs = 300;
      const loris = await Deno.connect({ transport: "unix", path });
      const sending = trickle(loris, '{"v":1,"id":1,"cmd":"ping"', 50);
      const lines = await within(readToEnd(loris), 10_000, "the slow request was cut off");
      assert.equal(lines.length, 1, lines.join("\n"));
      const reply = JSON.parse(lines[0]);
      assert.equal(reply.ok, false);
      assert.equal(reply.error.code, "timeout");
      assert.ok((await sending) > 1);

      // Blank lines are not requests: a client sending only newlines is idle.
      server.requestTimeoutMs = 60_000;
      server.idleTimeoutMs = 300;
      const blank = await Deno.connect({ transport: "unix", path });
      const blanks = trickle(blank, "\n", 50);
      assert.deepEqual(
        await within(readToEnd(blank), 10_000, "the blank-line client was idle"),
        [],
      );
      await blanks;
      assert.equal(server.clients, 0);
    } finally {
      await server.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "control server: a client that does not read its replies is disconnected",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "mcr-noread-" });
    await Deno.chmod(dir, 0o750);
    const path = `${dir}/sock/control.sock`;
    const ctx = { startedAt: performance.now() } as unknown as ControlContext;
    const server = await ControlServer.start(path, ctx);
    server.requestTimeoutMs = 300;
    try {
      const deaf = await Deno.connect({ transport: "unix", path });
      // 20,000 pings (about 1.5 MB of replies) and never a read: the socket buffers fill up.
      const pings = Array.from({ length: 20_000 }, (_, i) => `{"v":1,"id":${i},"cmd":"ping"}\n`);
      const writing = (async () => {
        const data = new TextEncoder().encode(pings.join(""));
        let off = 0;
        try {
          while (off < data.length) off += await deaf.write(data.subarray(off));
        } catch { /* closed by the server */ }
      })();
      const deadline = Date.now() + 20_000;
      while (server.clients > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(server.clients, 0, "the client that reads nothing was disconnected");
      deaf.close();
      await writing;
    } finally {
      await server.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
