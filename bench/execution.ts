import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import Docker from 'dockerode';
import { percentile } from './stats';

const IMAGE = 'mcpw-test-busybox:1';

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function timeIt(n: number, fn: () => Promise<unknown>, pauseMs = 0): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    samples.push(performance.now() - t0);
    if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
  }
  return samples;
}

/** A plain host spawn of `true`, the floor of any process start. */
async function hostSpawn(): Promise<void> {
  await new Promise<void>((ok, fail) => {
    const child = spawn('true');
    child.once('error', fail);
    child.once('exit', () => ok());
  });
}

/** docker exec through the Engine API: create, start, read to the end, inspect (the fallback path). */
async function rawDockerExec(docker: Docker, container: Docker.Container): Promise<void> {
  const exec = await container.exec({ Cmd: ['true'], AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  await new Promise<void>((ok) => {
    stream.on('end', ok);
    stream.on('close', ok);
    stream.resume();
  });
  await exec.inspect();
  void docker;
}

/**
 * RunCommand figures against dist/cli.js on a real engine (DOCKER_HOST): warm round trip of `true`
 * (request to final result) beside raw docker exec and a host spawn measured in the same run, the
 * cold first command of a new session, stdout streaming throughput, how fast CancelExecution
 * returns, how far past its timeout a command is stopped, and request latency during a 1 GB flood.
 */
export async function benchExecution(): Promise<Record<string, number>> {
  const root = await mkdtemp(join(tmpdir(), 'mcpw-bench-exec-'));
  const workspace = join(root, 'ws');
  await mkdir(workspace);
  const policyFile = join(root, 'policy.json');
  await writeFile(
    policyFile,
    JSON.stringify({ id: 'bench', rules: ['allow read(**)', 'allow write(**)', 'allow exec(*)'] }),
  );
  const child = spawn(
    process.execPath,
    [
      resolve(__dirname, '../dist/cli.js'),
      'serve',
      workspace,
      '--state-dir',
      join(root, 'state'),
      '--policy',
      policyFile,
      '--image',
      IMAGE,
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  const docker = new Docker();
  let container: Docker.Container | null = null;
  try {
    const line = await new Promise<string>((ok, fail) => {
      createInterface({ input: child.stdout! }).once('line', ok);
      child.once('exit', (code) => fail(new Error(`server exited with ${code}`)));
    });
    const ready = JSON.parse(line) as { url: string; tokenFile: string };
    const token = (await readFile(ready.tokenFile, 'utf8')).trim();
    const run = async (body: unknown, session?: string): Promise<{ exitCode: number; stdout: string }> => {
      const res = await fetch(`${ready.url}/execute`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          ...(session ? { 'x-mcp-workspace-session': session } : {}),
        },
        body: JSON.stringify(body),
      });
      const result = (await res.json()) as { exitCode: number; stdout: string; error?: { message: string } };
      if (res.status !== 200) throw new Error(`execute failed: ${JSON.stringify(result)}`);
      return result;
    };
    const newSession = async (): Promise<string> => {
      const res = await fetch(`${ready.url}/session/init`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: '{}',
      });
      return ((await res.json()) as { sessionId: string }).sessionId;
    };

    const cold = await timeIt(5, async () => run({ command: 'true', args: [] }, await newSession()));
    // Paced under the per-session exec rate limit (60 burst, 20/s), which is not what is measured.
    await timeIt(20, () => run({ command: 'true', args: [] }), 60);
    const warm = await timeIt(300, () => run({ command: 'true', args: [] }), 60);

    container = await docker.createContainer({
      Image: IMAGE,
      Cmd: ['sleep', '3600'],
      HostConfig: { NetworkMode: 'none' },
    });
    await container.start();
    const target = container;
    await timeIt(10, () => rawDockerExec(docker, target));
    const raw = await timeIt(100, () => rawDockerExec(docker, target));
    await timeIt(20, hostSpawn);
    const host = await timeIt(300, hostSpawn);

    const bytes = 8 * 1024 * 1024;
    const t0 = performance.now();
    const streamed = await fetch(`${ready.url}/execute`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        accept: 'application/x-ndjson',
      },
      body: JSON.stringify({ command: `head -c ${bytes} /dev/zero | tr '\\0' x` }),
    });
    await streamed.text();
    const streamSeconds = (performance.now() - t0) / 1000;

    const call = async (method: 'GET' | 'POST', path: string, body?: unknown) => {
      const res = await fetch(`${ready.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return (await res.json()) as Record<string, unknown>;
    };
    // CancelExecution on a running tree (one child ignores TERM): request to reply.
    const cancels: number[] = [];
    for (let i = 0; i < 10; i++) {
      const started = await call('POST', '/execute', {
        command: 'sh -c \'trap "" TERM; sleep 30\' & sleep 30 & echo started; wait',
        background: true,
      });
      const id = started.executionId as string;
      for (let attempt = 0; (await call('GET', `/executions/${id}`)).stdout !== 'started\n'; attempt++) {
        if (attempt > 500) throw new Error(`execution ${id} never printed 'started'`);
        await delay(20);
      }
      const c0 = performance.now();
      await call('POST', `/executions/${id}/cancel`, {});
      cancels.push(performance.now() - c0);
      await call('GET', `/executions/${id}?wait=true`);
    }
    // How long a command with a 300 ms timeout runs in all (its durationMs).
    const timeouts: number[] = [];
    for (let i = 0; i < 5; i++) {
      const result = await call('POST', '/execute', { command: 'sleep 20', timeoutMs: 300 });
      timeouts.push(result.durationMs as number);
    }
    // Latency of a cheap request while a 1 GB output flood runs in the same server.
    let flooding = true;
    const settled = () => (flooding = false);
    call('POST', '/execute', { command: 'head -c 1000000000 /dev/zero' }).then(settled, settled);
    const duringFlood: number[] = [];
    while (flooding) {
      const l0 = performance.now();
      await call('GET', '/list');
      if (flooding) duringFlood.push(performance.now() - l0);
      await delay(50);
    }

    return {
      runCommandWarmP50Ms: percentile(warm, 50),
      runCommandWarmP99Ms: percentile(warm, 99),
      runCommandColdP50Ms: percentile(cold, 50),
      runCommandColdMaxMs: percentile(cold, 100),
      dockerExecRawP50Ms: percentile(raw, 50),
      dockerExecRawP99Ms: percentile(raw, 99),
      hostSpawnP50Ms: percentile(host, 50),
      stdoutStreamMBps: Math.round((bytes / 1024 / 1024 / streamSeconds) * 10) / 10,
      cancelReturnP50Ms: percentile(cancels, 50),
      cancelReturnMaxMs: percentile(cancels, 100),
      timeout300MsRunP50Ms: percentile(timeouts, 50),
      timeout300MsRunMaxMs: percentile(timeouts, 100),
      listDuringFloodP50Ms: percentile(duringFlood, 50),
      listDuringFloodMaxMs: percentile(duringFlood, 100),
    };
  } finally {
    if (container) await container.remove({ force: true }).catch(() => undefined);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    await rm(root, { recursive: true, force: true });
  }
}
