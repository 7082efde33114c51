/** dost entry point: `deno run --allow-net main.ts -L :8080`. */
import "./src/modules.ts";
import { run } from "./src/cli/main.ts";

if (import.meta.main) {
  Deno.exit(await run(Deno.args));
}
