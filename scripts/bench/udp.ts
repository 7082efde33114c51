/**
 * UDP load for the bench's "UDP forward" rows (needs --allow-net --unstable-net):
 *
 *   udp.ts echo                               UDP echo server on 127.0.0.1, prints "port N"
 *   udp.ts client PORT [WINDOW] [SECS] [SIZE]  echoes SIZE-byte datagrams (default 1200) through
 *                                             127.0.0.1:PORT with WINDOW in flight (default 64)
 *                                             for SECS (default 3) after 0.5 s of warm-up;
 *                                             prints {"rate", "sent", "got", "lossPct", "total"}
 *                                             as JSON (total: echoes including warm-up)
 *
 * A datagram lost on the way shrinks the window, so the window is refilled after 50 ms without
 * a reply. The client first waits (up to 20 s) until a probe datagram comes back: the forwarder
 * is up.
 */
const HOST = "127.0.0.1";
const [mode, ...rest] = Deno.args;

if (mode === "echo") {
  const u = Deno.listenDatagram({ transport: "udp", hostname: HOST, port: 0 });
  console.log(`port ${(u.addr as Deno.NetAddr).port}`);
  const buf = new Uint8Array(65536);
  for (;;) {
    const [d, from] = await u.receive(buf);
    await u.send(d, from);
  }
} else if (mode === "client") {
  const [port, win = 64, secs = 3, size = 1200] = rest.map(Number);
  const u = Deno.listenDatagram({ transport: "udp", hostname: HOST, port: 0 });
  const to = { transport: "udp" as const, hostname: HOST, port };
  const payload = new Uint8Array(size).fill(0x61);
  const buf = new Uint8Array(65536);

  // Ready probe: resend every 200 ms until one comes back.
  const probe = setInterval(() => u.send(payload, to).catch(() => {}), 200);
  u.send(payload, to).catch(() => {});
  const probeDeadline = setTimeout(() => u.close(), 20_000);
  try {
    await u.receive(buf);
  } catch {
    console.log(JSON.stringify({ error: `no echo from ${HOST}:${port} within 20 s` }));
    Deno.exit(1);
  }
  clearInterval(probe);
  clearTimeout(probeDeadline);
  await new Promise((r) => setTimeout(r, 300)); // late probe replies drain

  let sent = 0;
  let got = 0;
  let inflight = 0;
  let lastReply = Date.now();
  const send = () => {
    sent++;
    inflight++;
    u.send(payload, to).catch(() => {});
  };
  for (let i = 0; i < win; i++) send();
  const refill = setInterval(() => {
    if (Date.now() - lastReply > 50) {
      inflight = 0;
      for (let i = 0; i < win; i++) send();
    }
  }, 50);
  let start = 0;
  let base = 0;
  let baseSent = 0;
  setTimeout(() => {
    start = performance.now();
    base = got;
    baseSent = sent;
  }, 500);
  const stop = setTimeout(() => u.close(), 500 + secs * 1000);
  try {
    for (;;) {
      await u.receive(buf);
      got++;
      inflight--;
      lastReply = Date.now();
      if (inflight < win) send();
    }
  } catch { /* closed by the timer */ }
  clearInterval(refill);
  clearTimeout(stop);
  const elapsed = (performance.now() - start) / 1000;
  const n = got - base;
  console.log(JSON.stringify({
    rate: Math.round(n / elapsed),
    sent: sent - baseSent,
    got: n,
    lossPct: Number((100 * Math.max(0, 1 - n / Math.max(1, sent - baseSent))).toFixed(2)),
    total: got, // every echo, warm-up included (for CPU per datagram)
  }));
  Deno.exit(0);
} else {
  console.error("usage: udp.ts echo | udp.ts client PORT [WINDOW] [SECS] [SIZE]");
  Deno.exit(2);
}
