import assert from 'node:assert/strict';
import { isLoopbackHost, principalOf } from '../../src/gateway/auth';

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

  it('reads the principal the auth middleware attached, and refuses without one', () => {
    const principal = { kind: 'agent' as const, name: 'a', role: 'agent' as const };
    assert.deepEqual(principalOf({ token: 't', clientId: 'a', scopes: [], extra: { principal } }), principal);
    assert.throws(() => principalOf(undefined), /UNAUTHORIZED|Missing bearer/);
  });
});
