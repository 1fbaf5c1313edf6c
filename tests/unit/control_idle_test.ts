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
