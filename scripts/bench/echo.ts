/**
 * A TCP echo server for the bench: `deno run --allow-net echo.ts PORT [once]`.
 * With `once` it echoes the first read and then closes: the server end closes first, so the
 * TIME_WAIT state stays on listening ports and connection churn does not use up the ephemeral
 * ports of the machine (connect(), and bind to port 0, of everyone on it).
 */
const port = Number(Deno.args[0]);
const once = Deno.args[1] === "once";
for await (const c of Deno.listen({ hostname: "127.0.0.1", port })) {
  (async () => {
    c.setNoDelay(true);
    const buf = new Uint8Array(512);
    try {
      for (let n; (n = await c.read(buf)) !== null;) {
        for (let off = 0; off < n;) off += await c.write(buf.subarray(off, n));
        if (once) break;
      }
    } catch { /* reset */ }
    try {
      c.close();
    } catch { /* closed */ }
  })();
}
