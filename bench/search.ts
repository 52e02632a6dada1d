import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { startServer, stopServer, type BenchServer } from './server';
import { percentile } from './stats';

/**
 * No request may stall the server: /health latency while hostile or heavy requests run (a regex with
 * catastrophic backtracking, several of them at once from one viewer, a 10 MiB write with
 * expectedRevision, a 10 MiB dry-run edit diff, deeply nested JSON), and search_files on a large tree
 * (a copy of this project's node_modules, ~17,000 files) next to ripgrep on the same tree.
 */

const HOSTILE_REGEX = '^(.+)+Z$';
const BIG_TREE_DIR = 'vendor-copy';
const NEEDLE = 'mcpwBenchNeedle';
const ROUNDS = 5;
const TEN_MIB = 10 * 1024 * 1024;

/** /health, probed from its own thread (so the bench's own work never delays a probe) every ~5 ms. */
const PROBE_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const samples = [];
let stop = false;
parentPort.on('message', () => { stop = true; });
function probe() {
  if (stop) { agent.destroy(); parentPort.postMessage(samples); return; }
  const t0 = process.hrtime.bigint();
  http.get(workerData.url + '/health', { agent }, (res) => {
    res.resume();
    res.on('end', () => {
      samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
      setTimeout(probe, 5);
    });
  }).on('error', () => setTimeout(probe, 5));
}
probe();
`;

interface HealthFigures {
  healthP50Ms: number;
  healthP99Ms: number;
  healthMaxMs: number;
  healthSamples: number;
}

/** Runs `load` while probing /health; returns the probe's figures and what `load` returned. */
export async function underProbe<T>(
  server: BenchServer,
  load: () => Promise<T>,
): Promise<HealthFigures & { load: T }> {
  const probe = new Worker(PROBE_SOURCE, { eval: true, workerData: { url: server.url } });
  await new Promise((r) => setTimeout(r, 100));
  let result: T;
  try {
    result = await load();
  } finally {
    probe.postMessage('stop');
  }
  const samples = await new Promise<number[]>((ok) => probe.once('message', ok));
  await probe.terminate();
  return {
    healthP50Ms: percentile(samples, 50),
    healthP99Ms: percentile(samples, 99),
    healthMaxMs: percentile(samples, 100),
    healthSamples: samples.length,
    load: result,
  };
}

async function call(
  server: BenchServer,
  method: string,
  path: string,
  body: string | undefined,
  token = server.token,
): Promise<{ status: number; text: string; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(server.url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body !== undefined ? { body } : {}),
  });
  const text = await res.text();
  return { status: res.status, text, ms: performance.now() - t0 };
}

async function mintToken(server: BenchServer, name: string, role: 'agent' | 'viewer'): Promise<string> {
  const res = await call(server, 'POST', '/tokens', JSON.stringify({ name, role }));
  if (res.status !== 200) throw new Error(`create_token ${name}: ${res.status} ${res.text}`);
  return (JSON.parse(res.text) as { token: string }).token;
}

/** Runs `fn` repeatedly for `ms`; returns how many runs finished and the slowest. */
async function repeatFor(
  ms: number,
  fn: () => Promise<number>,
): Promise<{ runs: number; slowestMs: number }> {
  const end = performance.now() + ms;
  let runs = 0;
  let slowestMs = 0;
  while (performance.now() < end) {
    slowestMs = Math.max(slowestMs, await fn());
    runs++;
  }
  return { runs, slowestMs: Math.round(slowestMs) };
}

function rg(cwd: string, args: string[]): Promise<{ ms: number; lines: number }> {
  const t0 = performance.now();
  return new Promise((ok, fail) => {
    execFile(
      '/usr/bin/rg',
      // The same files search_files looks at: hidden files too, .gitignore even outside a git
      // repository, never .git or node_modules.
      ['--hidden', '--no-require-git', '-g', '!.git/', '-g', '!node_modules/', '-n', ...args, '.'],
      { cwd, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout) => {
        // Exit status 1 means "no match".
        if (err && (err as { code?: number }).code !== 1) fail(err);
        else
          ok({ ms: performance.now() - t0, lines: stdout === '' ? 0 : stdout.trimEnd().split('\n').length });
      },
    );
  });
}

async function searchOnce(
  server: BenchServer,
  body: object,
): Promise<{ ms: number; matches: number; truncated: boolean }> {
  const res = await call(server, 'POST', '/search', JSON.stringify(body));
  if (res.status !== 200) throw new Error(`search failed: ${res.status} ${res.text.slice(0, 300)}`);
  const parsed = JSON.parse(res.text) as { matches: unknown[]; truncated: boolean };
  return { ms: res.ms, matches: parsed.matches.length, truncated: parsed.truncated };
}

/** Median wall time of search_files and of rg on the big tree, interleaved round by round. */
async function compareWithRipgrep(
  server: BenchServer,
  query: string,
  regex: boolean,
): Promise<{ searchMs: number; rgMs: number; ratio: number; matches: number; rgMatches: number }> {
  const body = { query, regex, maxResults: 1000 };
  const args = regex ? ['-e', query] : ['-F', '-e', query];
  await searchOnce(server, body);
  await rg(server.workspace, args);
  const ours: number[] = [];
  const theirs: number[] = [];
  let matches = 0;
  let rgMatches = 0;
  for (let i = 0; i < ROUNDS; i++) {
    const a = await searchOnce(server, body);
    const b = await rg(server.workspace, args);
    ours.push(a.ms);
    theirs.push(b.ms);
    matches = a.matches;
    rgMatches = b.lines;
  }
  const searchMs = percentile(ours, 50);
  const rgMs = percentile(theirs, 50);
  return { searchMs, rgMs, ratio: Math.round((searchMs / rgMs) * 100) / 100, matches, rgMatches };
}

/** A file of ordinary source text, and needles planted in the big tree. */
async function populate(workspace: string): Promise<void> {
  await cp(resolve(__dirname, '../node_modules'), join(workspace, BIG_TREE_DIR), { recursive: true });
  const source = await readFile(resolve(__dirname, '../src/core/resources/index.ts'), 'utf8');
  await writeFile(join(workspace, 'ordinary.ts'), source);
  for (const pkg of ['express', 'zod', 'yaml', 'typescript']) {
    await writeFile(
      join(workspace, BIG_TREE_DIR, pkg, `${NEEDLE}.js`),
      `// planted\nfunction ${NEEDLE}() { return 42; }\nconst x = "${NEEDLE}_123";\n`,
    ).catch(() => undefined);
  }
  // 10 MiB of lines for the write and the dry-run diff.
  const line = 'const value = computeSomething(alpha, beta, gamma); // ordinary line\n';
  await writeFile(join(workspace, 'big.ts'), line.repeat(Math.floor(TEN_MIB / line.length) - 16));
}

/** Figures of this section; `MCPW_BENCH=search npm run bench` runs it alone. */
export async function benchSearch(): Promise<Record<string, unknown>> {
  const server = await startServer(populate);
  try {
    const viewer = await mintToken(server, 'bench-viewer', 'viewer');
    const other = await mintToken(server, 'bench-other', 'viewer');
    const idle = await underProbe(server, () => new Promise((r) => setTimeout(r, 1000)));

    const hostileBody = JSON.stringify({ query: HOSTILE_REGEX, regex: true, path: 'ordinary.ts' });
    const hostile = await underProbe(server, () =>
      repeatFor(2000, async () => (await call(server, 'POST', '/search', hostileBody, viewer)).ms),
    );

    // Eight at once from one viewer over the whole workspace (the big tree included), while another
    // viewer's ordinary search waits its turn.
    const treeBody = JSON.stringify({ query: HOSTILE_REGEX, regex: true });
    const concurrent = await underProbe(server, async () => {
      const hostileCalls = Array.from({ length: 8 }, () => call(server, 'POST', '/search', treeBody, viewer));
      await new Promise((r) => setTimeout(r, 200));
      const otherCall = await call(server, 'POST', '/search', JSON.stringify({ query: NEEDLE }), other);
      const done = await Promise.all(hostileCalls);
      return {
        otherSearchMs: Math.round(otherCall.ms),
        hostileSlowestMs: Math.round(Math.max(...done.map((d) => d.ms))),
        hostileStatuses: [...new Set(done.map((d) => d.status))],
        hostileTruncated: done.filter(
          (d) => d.status === 200 && (JSON.parse(d.text) as { truncated: boolean }).truncated,
        ).length,
      };
    });

    // Five 10 MiB writes, each checked against the revision the previous one left.
    const original = await readFile(join(server.workspace, 'big.ts'), 'utf8');
    const contents = [original.replace(/^const/, 'let'), original];
    const revisions = contents.map((c) => createHash('sha256').update(c).digest('hex'));
    const writeBodies = contents.map((content, i) =>
      JSON.stringify({ content, expectedRevision: revisions[1 - i] }),
    );
    const bigWrite = await underProbe(server, async () => {
      let slowestMs = 0;
      for (let i = 0; i < 6; i++) {
        const res = await call(server, 'PUT', '/files/big.ts', writeBodies[i % 2]);
        if (res.status !== 200)
          throw new Error(`10 MiB write failed: ${res.status} ${res.text.slice(0, 200)}`);
        slowestMs = Math.max(slowestMs, res.ms);
      }
      return { writes: 6, slowestWriteMs: Math.round(slowestMs) };
    });

    const editBody = JSON.stringify({
      path: 'big.ts',
      edits: [{ oldText: 'computeSomething', newText: 'computeOther', replaceAll: true }],
      dryRun: true,
    });
    const bigDiff = await underProbe(server, async () => {
      let slowestMs = 0;
      for (let i = 0; i < 3; i++) {
        const res = await call(server, 'POST', '/edit', editBody);
        if (res.status !== 200)
          throw new Error(`10 MiB dry-run edit failed: ${res.status} ${res.text.slice(0, 200)}`);
        slowestMs = Math.max(slowestMs, res.ms);
      }
      return { edits: 3, slowestEditMs: Math.round(slowestMs) };
    });

    const depth = 1_000_000;
    const nestedBody = '{"query":' + '['.repeat(depth) + ']'.repeat(depth) + '}';
    const nested = await underProbe(server, async () => {
      const statuses = new Set<number>();
      const repeated = await repeatFor(1000, async () => {
        const res = await call(server, 'POST', '/search', nestedBody);
        statuses.add(res.status);
        return res.ms;
      });
      return { ...repeated, statuses: [...statuses] };
    });

    const literal = await compareWithRipgrep(server, NEEDLE, false);
    const regexWithLiteral = await compareWithRipgrep(server, `function\\s+${NEEDLE}\\w*`, true);
    const regexNoLiteral = await compareWithRipgrep(server, '\\w+\\d{7}\\s*=\\s*\\w{30}', true);
    const strip = ({ load, ...figures }: HealthFigures & { load: unknown }): Record<string, unknown> => ({
      ...figures,
      ...(typeof load === 'object' && load !== null ? load : {}),
    });
    return {
      search: {
        healthIdle: strip(idle),
        healthDuringHostileRegex: strip(hostile),
        healthDuring8ConcurrentHostileFromOneViewer: strip(concurrent),
        healthDuring10MiBWriteWithExpectedRevision: strip(bigWrite),
        healthDuring10MiBDryRunEditDiff: strip(bigDiff),
        healthDuringNestedJson: { depth, ...strip(nested) },
        bigTree: {
          literal,
          regexWithLiteral,
          regexNoLiteral,
        },
      },
    };
  } finally {
    await stopServer(server);
  }
}
