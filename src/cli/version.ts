/** dost's version string. */
import denoJson from "../../deno.json" with { type: "json" };

export const VERSION: string = denoJson.version;

/** `dost <version> (deno <ver> <os>/<arch>)`, as printed by `-V`. */
export function versionLine(): string {
  const arch = Deno.build.arch === "x86_64" ? "amd64" : Deno.build.arch;
  return `dost ${VERSION} (deno ${Deno.version.deno} ${Deno.build.os}/${arch})`;
}
