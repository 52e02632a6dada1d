import assert from 'node:assert/strict';
import { relative } from 'node:path';
import { build, stop } from 'esbuild';

/**
 * The audit webview's bundle (media/audit.js) runs in a browser sandbox: it may pull in only its own
 * files, the pure webview helpers and protocol types, never Node built-ins, `vscode`, core internals,
 * the host bridge or zod (the host validates; the webview never needs the schemas).
 */
describe('audit webview bundle', () => {
  // esbuild's service process must not outlive the suite.
  after(() => stop());

  it('holds only the webview, its pure helpers and the audit protocol', async () => {
    const result = await build({
      entryPoints: ['media/audit/main.ts'],
      bundle: true,
      format: 'iife',
      platform: 'browser',
      target: 'es2022',
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = Object.keys(result.metafile.inputs)
      .map((p) => relative(process.cwd(), p))
      .sort();
    const allowed = [
      /^media\/audit\/[a-z]+\.ts$/,
      /^src\/extension\/webview\/(model|protocol)\.ts$/,
      /^src\/protocol\/audit\.ts$/,
    ];
    const foreign = inputs.filter((p) => !allowed.some((re) => re.test(p)));
    assert.deepEqual(foreign, [], 'files outside the webview and its pure helpers');
    assert.ok(inputs.includes('media/audit/state.ts'));
    assert.ok(
      inputs.includes('src/protocol/audit.ts'),
      'live records match text filters on the canonical line',
    );
    const code = result.outputFiles[0].text;
    assert.doesNotMatch(code, /require\(|from ["']node:|["']vscode["']/);
  });
});
