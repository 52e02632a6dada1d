import { benchAudit } from './audit';
import { benchServer } from './server';

/** `npm run bench`: runs every benchmark and prints one JSON object of figures. */
async function main(): Promise<void> {
  const figures: Record<string, unknown> = {
    machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
  };
  Object.assign(figures, await benchServer());
  Object.assign(figures, await benchAudit());
  process.stdout.write(JSON.stringify(figures, null, 2) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
