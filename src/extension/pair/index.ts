import type * as vscode from 'vscode';
import { PairGuest, PairLinkStore } from './guest';

export { createPairLink } from './host';
export { PairGuest, PairLinkStore } from './guest';
export { PAIR_SCHEME, pairAuthority, remotePath } from './fs';

/** Command ids of pair sessions, as contributed in package.json. */
export const PAIR_COMMANDS = {
  createPairLink: 'mcpWorkspace.createPairLink',
  joinPairSession: 'mcpWorkspace.joinPairSession',
} as const;

/**
 * Sets up the guest side of pair sessions for this window: the joined links, the virtual folders'
 * FileSystemProvider and the URI handler. Runs before anything reads a `mcpw-pair:` folder.
 */
export async function startPairGuest(
  context: vscode.ExtensionContext,
  log: vscode.LogOutputChannel,
): Promise<PairGuest> {
  const guest = new PairGuest(await PairLinkStore.load(context.secrets), log, context.globalState);
  context.subscriptions.push(guest);
  guest.resumeJoin().catch((err: unknown) => log.warn(`pair session: ${(err as Error).message}`));
  return guest;
}
