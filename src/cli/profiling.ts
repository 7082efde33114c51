/**
 * `-P addr`: gost's profiling server, in Deno terms: process memory and per-service connection
 * counts as JSON at `/debug/vars`.
 */
import { splitHostPort } from "../core/conn.ts";
import { log } from "../core/logger.ts";
import type { Service } from "../service/service.ts";

export function startProfiling(addr: string, services: () => Service[]): void {
  const { host, port } = splitHostPort(addr);
  Deno.serve({ hostname: host || "0.0.0.0", port, onListen: () => {} }, (req) => {
    if (new URL(req.url).pathname !== "/debug/vars") {
      return new Response("not found\n", { status: 404 });
    }
    const body = {
      memory: Deno.memoryUsage(),
      services: services().map((s) => ({ name: s.name, connections: s.connections })),
    };
    return Response.json(body);
  });
  log.info(`profiling on ${addr} (/debug/vars)`);
}
