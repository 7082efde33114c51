/**
 * Where dost looks for a config file when neither `-C` nor `-L` is given: the working directory
 * first (as gost's documentation describes it, and what a user running dost in a project folder
 * expects; gost's code actually asks viper for /etc/gost first), then `/etc/gost/`, `/etc/dost/`,
 * `$HOME/.gost/`, `$HOME/.dost/`. In each, the names `gost.json`, `gost.yaml`, `gost.yml`,
 * `dost.json`, `dost.yaml`, `dost.yml`. The first file found wins.
 */

/** Candidate paths, in search order. */
export function configCandidates(cwd: string, home: string | undefined): string[] {
  const dirs = [cwd, "/etc/gost", "/etc/dost"];
  if (home) dirs.push(`${home}/.gost`, `${home}/.dost`);
  const names = ["gost", "dost"].flatMap((n) => ["json", "yaml", "yml"].map((e) => `${n}.${e}`));
  return dirs.flatMap((d) => names.map((n) => `${d.replace(/\/+$/, "")}/${n}`));
}

/** The first candidate that is a file, or undefined. `isFile` is injectable for tests. */
export function discoverConfig(
  cwd: string,
  home: string | undefined,
  isFile: (p: string) => boolean = fileExists,
): string | undefined {
  return configCandidates(cwd, home).find(isFile);
}

function fileExists(p: string): boolean {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    // Missing or not readable (no --allow-read for that folder): not a candidate.
    return false;
  }
}
