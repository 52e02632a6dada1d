/**
 * Mocha root hook: after the whole run, nothing the tests started may still be running. Active
 * when the run has an engine of its own (MCPW_DOCKER_ROOT, as `CI=true .ci/run` sets), where any
 * session container left is this run's: a shared engine may hold other runs' containers.
 * Checks that no session container remains on the engine and that no code-server or Chromium
 * started by this process is still alive. A leftover fails the run as a failed "after all" hook.
 */
import Docker from 'dockerode';
import { commandLine, descendants } from './procs';

const SETTLE_MS = 15_000;

/** Live descendants of this process whose command line names code-server or Chromium. */
function leftoverProcesses(): string[] {
  return descendants(process.pid).flatMap((pid) => {
    const cmdline = commandLine(pid);
    return cmdline && /code-server|chromium/.test(cmdline) ? [`${pid}: ${cmdline.slice(0, 160)}`] : [];
  });
}

async function sessionContainers(): Promise<string[]> {
  const docker = new Docker();
  const list = await docker.listContainers({ all: true, filters: { label: ['dev.mcp-workspace.session'] } });
  return list.map((c) => `${c.Names.join(',')} (${c.State})`);
}

export const mochaHooks = {
  async afterAll(this: Mocha.Context): Promise<void> {
    if (!process.env.MCPW_DOCKER_ROOT) return;
    this.timeout(SETTLE_MS + 30_000);
    const deadline = Date.now() + SETTLE_MS;
    let containers = await sessionContainers();
    let processes = leftoverProcesses();
    while ((containers.length > 0 || processes.length > 0) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      containers = await sessionContainers();
      processes = leftoverProcesses();
    }
    const problems = [
      ...containers.map((c) => `session container still present: ${c}`),
      ...processes.map((p) => `process still running: ${p}`),
    ];
    if (problems.length > 0) throw new Error(`The run left things behind:\n${problems.join('\n')}`);
  },
};
