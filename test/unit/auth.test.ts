import assert from 'node:assert/strict';
import { isAllowedOrigin, isLoopbackHost, principalOf } from '../../src/gateway/auth';

describe('gateway auth helpers', () => {
  it('accepts only loopback Host headers, with or without a port', () => {
    for (const host of ['127.0.0.1', '127.0.0.1:8931', 'localhost', 'LOCALHOST:1', '[::1]', '[::1]:443']) {
      assert.equal(isLoopbackHost(host), true, host);
    }
    for (const host of [
      undefined,
      '',
      'evil.example.com',
      '127.0.0.1.evil.example.com',
      'localhost.evil.example.com:80',
      '10.0.0.1',
      '0.0.0.0:8931',
      '[::2]',
      '::1',
      'localhost:99999999',
      'localhost:80:80',
      'user@localhost',
    ]) {
      assert.equal(isLoopbackHost(host), false, String(host));
    }
  });

  it("accepts the server's own loopback origins and listed ones, nothing else", () => {
    const allowed = new Set(['vscode-webview://trusted']);
    const at = (origin: string | undefined, host = '127.0.0.1:8931') =>
      isAllowedOrigin(origin, { host, serverPort: 8931, allowed });
    for (const origin of [
      undefined,
      'http://localhost:8931',
      'http://127.0.0.1:8931',
      'http://[::1]:8931',
      'vscode-webview://trusted',
    ]) {
      assert.equal(at(origin), true, String(origin));
    }
    assert.equal(at('http://localhost:9000', 'localhost:9000'), true, 'the port the request addressed');
    assert.equal(at('http://localhost', 'localhost'), true, 'port 80 on both sides');
    for (const origin of [
      'http://localhost:8932',
      'https://localhost:8931',
      'http://evil.example.com:8931',
      'http://localhost.evil.example.com:8931',
      'http://127.0.0.2:8931',
      'http://localhost:8931/',
      'http://LOCALHOST:8931/x',
      'http://u:p@localhost:8931',
      'null',
      '',
      'vscode-webview://other',
    ]) {
      assert.equal(at(origin), false, origin);
    }
    assert.equal(
      at('http://localhost:8931', 'evil.example.com:8931'),
      false,
      'a foreign Host is never same-origin',
    );
    assert.equal(at('http://localhost:9000', '127.0.0.1:8931'), false);
  });

  it('reads the principal the auth middleware attached, and refuses without one', () => {
    const principal = { kind: 'agent' as const, name: 'a', role: 'agent' as const };
    assert.deepEqual(principalOf({ token: 't', clientId: 'a', scopes: [], extra: { principal } }), principal);
    assert.throws(() => principalOf(undefined), /UNAUTHORIZED|Missing bearer/);
  });
});
