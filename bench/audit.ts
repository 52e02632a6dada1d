import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog, verifyAuditLog, type AuditEntry } from '../src/core/audit';

const RECORDS = 100_000;
const WARMUP = 10_000;
const CLIENTS = 4;
const WAVE = 500;

/** A realistic ~300-byte entry (about 530 bytes once chained): a write_file call with a content summary. */
function entry(i: number): AuditEntry {
  return {
    sessionId: `sess-${i % 17}`,
    agent: i % 3 === 0 ? 'claude' : 'copilot',
    role: 'agent',
    transport: 'mcp',
    op: i % 5 === 0 ? 'read_file' : 'write_file',
    params: {
      path: `src/module-${i % 100}/file-${i}.ts`,
      content: `export const value${i} = ${i};\n`,
      createDirs: true,
    },
    decision: i % 11 === 0 ? 'deny' : 'allow',
    rule: i % 11 === 0 ? null : 'agents-may-write-src',
    outcome: { ok: true, revision: 'r' + i },
    durationMs: 1.25,
  };
}

/** Appends entries `[from, to)` from {@link CLIENTS} concurrent clients, each awaiting waves of {@link WAVE}. */
async function appendRange(log: AuditLog, from: number, to: number): Promise<void> {
  const perClient = Math.ceil((to - from) / CLIENTS);
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      const end = Math.min(to, from + (c + 1) * perClient);
      for (let i = from + c * perClient; i < end; i += WAVE) {
        const wave: Promise<unknown>[] = [];
        for (let j = i; j < Math.min(i + WAVE, end); j++) wave.push(log.append(entry(j)));
        await Promise.all(wave);
      }
    }),
  );
}

/**
 * Measures steady-state audit throughput (after a JIT warm-up): appends/s with fsync on for
 * {@link RECORDS} concurrent appends, then verified records/s over the whole resulting file.
 */
export async function benchAudit(): Promise<Record<string, number>> {
  const dir = await mkdtemp(join(tmpdir(), 'audit-bench-'));
  try {
    const log = await AuditLog.open({ dir });
    await appendRange(log, 0, WARMUP);
    await log.flush();
    await verifyAuditLog(dir);

    const appendStart = performance.now();
    await appendRange(log, WARMUP, WARMUP + RECORDS);
    const appendMs = performance.now() - appendStart;
    await log.close();

    const total = WARMUP + RECORDS;
    const verifyStart = performance.now();
    const result = await verifyAuditLog(dir);
    const verifyMs = performance.now() - verifyStart;
    if (!result.ok || result.records !== total) {
      throw new Error(`audit bench: verify failed: ${JSON.stringify(result)}`);
    }
    return {
      auditAppendsPerSec: Math.round((RECORDS / appendMs) * 1000),
      auditVerifyRecordsPerSec: Math.round((total / verifyMs) * 1000),
      auditRecords: total,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
