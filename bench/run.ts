import { cpus } from 'node:os';
import { ensureDocker } from '../test/helpers/docker';
import { benchAudit } from './audit';
import { benchBuildContext } from './build-context';
import { benchCollab } from './collab';
import { benchExecution } from './execution';
import { benchExtension } from './extension';
import { benchMcpServers } from './mcpservers';
import { benchParsers } from './parsers';
import { benchRunner } from './runner';
import { benchRuntime } from './runtime';
import { benchSearch } from './search';
import { benchServer } from './server';
import { benchTools } from './tools';

/**
 * `npm run bench`: runs every benchmark and prints one JSON object of figures. `MCPW_BENCH=search`
 * (or `parsers`, `tools`, `mcpservers`, `collab`) runs only the named section.
 */
async function main(): Promise<void> {
  const figures: Record<string, unknown> = { machine: { cpus: cpus().length, node: process.version } };
  if (process.env.MCPW_BENCH === 'parsers') {
    Object.assign(figures, await benchParsers());
    process.stdout.write(JSON.stringify(figures, null, 2) + '\n');
    return;
  }
  if (process.env.MCPW_BENCH === 'search') {
    Object.assign(figures, await benchSearch());
    process.stdout.write(JSON.stringify(figures, null, 2) + '\n');
    return;
  }
  if (process.env.MCPW_BENCH === 'collab') {
    Object.assign(figures, await benchCollab());
    process.stdout.write(JSON.stringify(figures, null, 2) + '\n');
    return;
  }
  if (process.env.MCPW_BENCH === 'mcpservers') {
    ensureDocker();
    Object.assign(figures, await benchMcpServers());
    process.stdout.write(JSON.stringify(figures, null, 2) + '\n');
    return;
  }
  if (process.env.MCPW_BENCH === 'tools') {
    ensureDocker();
    Object.assign(figures, await benchTools());
    process.stdout.write(JSON.stringify(figures, null, 2) + '\n');
    return;
  }
  Object.assign(figures, await benchServer());
  Object.assign(figures, await benchSearch());
  Object.assign(figures, await benchCollab());
  Object.assign(figures, await benchAudit());
  Object.assign(figures, await benchRunner());
  Object.assign(figures, await benchParsers());
  // Execution figures need a real engine: provision it as the tests do.
  ensureDocker();
  Object.assign(figures, await benchRuntime());
  Object.assign(figures, await benchExecution());
  Object.assign(figures, await benchTools());
  Object.assign(figures, await benchMcpServers());
  Object.assign(figures, await benchBuildContext());
  Object.assign(figures, await benchExtension());
  process.stdout.write(JSON.stringify(figures, null, 2) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
