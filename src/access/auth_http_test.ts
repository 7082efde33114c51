import { assert, assertEquals } from "../../tests/lib/assert.ts";
import { Logger } from "../core/logger.ts";
import { HttpPluginAuther, httpUserSource } from "./auth_http.ts";
import { TableAuther } from "./auth.ts";

const log = new Logger("test");

/** A local server answering with `h`; closed by the returned function. */
function serve(h: (req: Request) => Response | Promise<Response>) {
  const ac = new AbortController();
  const s = Deno.serve({ hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen() {} }, h);
  return {
    url: `http://127.0.0.1:${s.addr.port}/auth`,
    close: async () => {
      ac.abort();
      await s.finished;
    },
  };
}

Deno.test("HttpPluginAuther: posts the gost JSON; non-200, bad JSON and timeouts deny", async () => {
  let mode = "ok";
  const bodies: unknown[] = [];
  const srv = serve(async (req) => {
    bodies.push(await req.json());
    if (mode === "500") return new Response("no", { status: 500 });
    if (mode === "junk") return new Response("{not json");
    if (mode === "slow") await new Promise((r) => setTimeout(r, 1500));
    return Response.json({ ok: true, id: "u1" });
  });
  try {
    const a = new HttpPluginAuther(srv.url, 500, log);
    assert(await a.verify("u", "p", { client: "127.0.0.1:5", service: "svc" }));
    assertEquals(bodies[0], {
      service: "svc",
      username: "u",
      password: "p",
      client: "127.0.0.1:5",
    });
    for (mode of ["500", "junk", "slow"]) assert(!(await a.verify("u", "p")), mode);
  } finally {
    await srv.close();
  }
});

Deno.test("httpUserSource: GET a user list; a failed refresh keeps the last one", async () => {
  let body: string | null = "alice pw\nbob\n";
  const srv = serve(() => body === null ? new Response("", { status: 503 }) : new Response(body));
  try {
    const src = httpUserSource(srv.url, 1000, 0, log);
    await src.ready;
    const a = new TableAuther([src]);
    assert(await a.verify("alice", "pw"));
    assert(await a.verify("bob", "any"));
    body = null;
    await src.refresh();
    assert(await a.verify("alice", "pw"));
    body = "carol x\n";
    await src.refresh();
    assert(!(await a.verify("alice", "pw")));
    assert(await a.verify("carol", "x"));
    src.close();
  } finally {
    await srv.close();
  }
});
