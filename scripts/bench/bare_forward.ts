/** The runtime's ceiling: a bare TCP forwarder. `deno run --allow-net bare_forward.ts PORT TARGET_PORT` */
const [port, target] = Deno.args.map(Number);
async function pump(src: Deno.TcpConn, dst: Deno.TcpConn) {
  const buf = new Uint8Array(65536);
  try {
    for (let n; (n = await src.read(buf)) !== null;) {
      for (let off = 0; off < n;) off += await dst.write(buf.subarray(off, n));
    }
    await dst.closeWrite();
  } catch { /* reset */ }
}
for await (const c of Deno.listen({ hostname: "127.0.0.1", port })) {
  Deno.connect({ hostname: "127.0.0.1", port: target }).then(async (t) => {
    c.setNoDelay(true), t.setNoDelay(true);
    await Promise.all([pump(c, t), pump(t, c)]);
    c.close(), t.close();
  }, () => c.close());
}
