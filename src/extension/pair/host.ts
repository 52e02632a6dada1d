import * as vscode from 'vscode';
import { AGENT_NAME_RE } from '../../protocol/principal';
import { PAIR_PREFIX, type PairMode } from '../../protocol/pair';
import { runOwnerOperation } from '../ownerActions';
import type { FolderServer } from '../servers';

const LIFETIMES = [
  { label: '1 hour', seconds: 3600 },
  { label: '15 minutes', seconds: 900 },
  { label: '8 hours', seconds: 8 * 3600 },
  { label: '1 day', seconds: 86_400 },
] as const;

/**
 * "Create Pair Link" on the host: pick read-write or read-only, a guest name and a lifetime; the
 * link (with a scoped, expiring token) is minted as an owner operation (audited), copied to the
 * clipboard, and its expiry shown. Revoking it is "Revoke Agent Token" on `pair:<name>`.
 */
export async function createPairLink(target: FolderServer | undefined): Promise<void> {
  if (!target) return;
  const mode = await vscode.window.showQuickPick(
    [
      {
        label: 'Read-write',
        mode: 'read-write' as PairMode,
        description: 'the guest reads and edits files live with you (never runs commands)',
      },
      {
        label: 'Read-only',
        mode: 'read-only' as PairMode,
        description: 'the guest only reads and follows along',
      },
    ],
    { placeHolder: 'What may the guest do?' },
  );
  if (!mode) return;
  const taken = new Set(target.server.sessions.listTokens().map((t) => t.name));
  const name = await vscode.window.showInputBox({
    prompt: 'Guest name (shown in the Sessions view and the audit log as pair:<name>)',
    value: 'guest',
    validateInput: (v) =>
      !AGENT_NAME_RE.test(v)
        ? 'Letters, digits, . _ - (up to 64)'
        : taken.has(PAIR_PREFIX + v)
          ? `A pair link for '${v}' exists; revoke it first or pick another name.`
          : null,
  });
  if (!name) return;
  const lifetime = await vscode.window.showQuickPick(
    LIFETIMES.map((l) => ({ label: l.label, seconds: l.seconds })),
    { placeHolder: 'The link expires after' },
  );
  if (!lifetime) return;
  const created = await runOwnerOperation(target.server, 'create_pair_link', {
    mode: mode.mode,
    name,
    ttlSeconds: lifetime.seconds,
  });
  await vscode.env.clipboard.writeText(created.link);
  const expires = new Date(created.expiresAt).toLocaleString();
  void vscode.window.showInformationMessage(
    `Pair link for '${created.id}' (${mode.mode}) copied; it expires ${expires}. The guest runs "MCP Workspace: Join Pair Session" (or opens the link). Revoke it with "Revoke Agent Token".`,
  );
}
