/**
 * `KEY=VALUE` environment entries, as Docker's `Config.Env`, `/proc/PID/environ` and `-e` arguments
 * spell them.
 */

/**
 * Splits one `KEY=VALUE` entry at its first `=`; undefined when there is no `=` or the key is empty
 * (a bare `KEY` means "copy from the host", which is not a value).
 */
export function parseEnvEntry(entry: string): [key: string, value: string] | undefined {
  const eq = entry.indexOf('=');
  return eq > 0 ? [entry.slice(0, eq), entry.slice(eq + 1)] : undefined;
}

/** The entries of a `KEY=VALUE` list as a record; entries without a key and value are skipped, later keys win. */
export function parseEnvList(entries: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of entries) {
    const pair = parseEnvEntry(entry);
    if (pair !== undefined) env[pair[0]] = pair[1];
  }
  return env;
}
