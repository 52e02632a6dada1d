import { join } from 'node:path';
import { RuleTester } from 'eslint';
import tseslint from 'typescript-eslint';

/** The lint rule behind "imports go through each component's public entry" (ARCHITECTURE layers). */
describe('lint: mcpw/public-entry', () => {
  it('refuses reaching into another component and allows entries, libraries and own files', async () => {
    const { default: rule } = await import('../../eslint-rules/public-entry.mjs');
    const root = join(__dirname, '..', '..');
    const file = (rel: string): string => join(root, rel);
    const tester = new RuleTester({ languageOptions: { parser: tseslint.parser } });
    tester.run('public-entry', rule, {
      valid: [
        { filename: file('src/server/index.ts'), code: "import { x } from '../core/execution';" },
        { filename: file('src/server/index.ts'), code: "import { x } from '../gateway';" },
        { filename: file('src/gateway/rest.ts'), code: "import { x } from './auth';" },
        { filename: file('src/core/operations/handlers/files.ts'), code: "import { x } from '../types';" },
        { filename: file('src/core/log/index.ts'), code: "import { x } from '../../protocol/errors';" },
        { filename: file('src/core/policy/rules.ts'), code: "import { x } from '../shared/glob';" },
        {
          filename: file('media/audit/state.ts'),
          code: "import { x } from '../../src/extension/webview/model';",
        },
        {
          filename: file('test/unit/x.test.ts'),
          code: "import { x } from '../../src/core/resources/confined';",
        },
      ],
      invalid: [
        {
          filename: file('src/server/index.ts'),
          code: "import { DockerRuntime } from '../core/execution/docker';",
          errors: [{ messageId: 'internal' }],
        },
        {
          filename: file('src/core/execution/docker/pool.ts'),
          code: "import { openConfinedRoot } from '../../resources/confined';",
          errors: [{ messageId: 'internal' }],
        },
        {
          filename: file('src/extension/index.ts'),
          code: "export { AuditLog } from '../core/audit/store';",
          errors: [{ messageId: 'internal' }],
        },
        {
          filename: file('src/server/index.ts'),
          code: "const mcp = import('../gateway/mcp');",
          errors: [{ messageId: 'internal' }],
        },
        {
          filename: file('media/audit/main.ts'),
          code: "import { x } from '../../src/core/audit/verify';",
          errors: [{ messageId: 'internal' }],
        },
      ],
    });
  });
});
