import { randomBytes } from 'node:crypto';
import { WorkspaceError } from '../../../protocol/errors';
import { formatPairLink, PAIR_OPERATIONS, PAIR_PREFIX } from '../../../protocol/pair';
import { AGENT_NAME_RE } from '../../../protocol/principal';
import type { DispatcherDeps, Handlers } from '../types';

/**
 * Pair links: a scoped, expiring token for a human partner's VS Code (file operations and live
 * co-editing only) and the link that carries it. Revoking goes through revoke_token with its id.
 */
export function pairHandlers(deps: DispatcherDeps): Handlers<'create_pair_link'> {
  return {
    create_pair_link: async (input) => {
      const endpoint = deps.endpoint?.();
      if (!endpoint) {
        throw new WorkspaceError(
          'NOT_FOUND',
          'This server has no address to put in a pair link yet; wait until it listens and try again.',
        );
      }
      const guest = input.name ?? `guest-${randomBytes(2).toString('hex')}`;
      if (!AGENT_NAME_RE.test(guest)) {
        throw new WorkspaceError(
          'INVALID_ARGUMENT',
          `Invalid guest name ${JSON.stringify(guest)}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit.`,
        );
      }
      const minted = await deps.sessions.mintToken(
        PAIR_PREFIX + guest,
        input.mode === 'read-write' ? 'agent' : 'viewer',
        { expiresInMs: input.ttlSeconds * 1000, scope: PAIR_OPERATIONS },
      );
      const link = formatPairLink({ ...endpoint, token: minted.token, mode: input.mode, name: guest });
      return { link, token: minted.token, expiresAt: minted.expiresAt!, id: minted.name };
    },
  };
}
