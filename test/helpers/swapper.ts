import { spawn, type ChildProcess } from 'node:child_process';

/**
 * Starts a host-side process that, as fast as it can, renames `<workspace>/a` away, puts a symlink
 * to one of `targets` in its place, removes it and puts the real folder back: the race window of
 * every file tool and tree walk. `batch` swaps run between yields to the swapper's event loop.
 * SIGTERM restores `a` before the process exits.
 */
export function startSwapper(workspace: string, targets: string[], batch = 2000): ChildProcess {
  const script = `
    const fs = require('node:fs');
    const [ws, batch, ...targets] = process.argv.slice(1);
    const a = ws + '/a', real = ws + '/a.real';
    let i = 0;
    process.on('SIGTERM', () => {
      try { if (fs.lstatSync(a).isSymbolicLink()) fs.unlinkSync(a); } catch {}
      try { fs.renameSync(real, a); } catch {}
      process.exit(0);
    });
    setInterval(() => {}, 1 << 30);
    (function loop() {
      for (let n = 0; n < Number(batch); n++) {
        try { fs.renameSync(a, real); } catch {}
        try { fs.symlinkSync(targets[i++ % targets.length], a); } catch {}
        try { fs.unlinkSync(a); } catch {}
        try { fs.renameSync(real, a); } catch {}
      }
      setImmediate(loop);
    })();
  `;
  return spawn(process.execPath, ['-e', script, workspace, String(batch), ...targets], { stdio: 'ignore' });
}
