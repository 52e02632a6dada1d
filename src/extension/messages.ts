import * as vscode from 'vscode';
import type { WorkspaceMessage } from '../core/coordination';
import { MessageThrottle, type MessageBatch } from './messageThrottle';
import { runOwnerOperation } from './ownerActions';
import type { FolderServer, ServerHost } from './servers';

/** Longest message text shown in a notification (the quick pick and the audit log keep all of it). */
const MAX_SHOWN_CHARS = 300;

/** A message as it arrived, with the server (folder) it came through. */
interface Received {
  target: FolderServer;
  message: WorkspaceMessage;
}

function shorten(text: string, max = MAX_SHOWN_CHARS): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/**
 * Messages agents send to everyone or to `owner` (broadcast_message), shown to the VS Code user as
 * notifications "alice: <text>" with Reply (a broadcast_message back to the sender, as the owner,
 * through the dispatcher) and Show Audit Log. Each sender gets at most one notification per window;
 * what it sends meanwhile is coalesced ("alice sent 5 messages") into a list to pick from.
 */
export class MessageNotifications implements vscode.Disposable {
  private readonly throttle: MessageThrottle<Received>;
  private readonly following: vscode.Disposable;

  constructor(
    private readonly host: ServerHost,
    private readonly showAuditLogCommand: string,
    windowMs?: number,
  ) {
    this.throttle = new MessageThrottle((batch) => void this.show(batch), windowMs);
    // Listens to the servers running now (they come and go with start, stop and folder changes).
    this.following = host.follow((target) =>
      target.server.coordination.onMessage((message) =>
        // One window per sender and folder: the same agent name in two folders is two senders.
        this.throttle.push(`${target.folder.name}\u0000${message.from}`, { target, message }),
      ),
    );
  }

  dispose(): void {
    this.following.dispose();
    this.throttle.dispose();
  }

  private sender(received: Received): string {
    const { folder } = received.target;
    return this.host.list().length > 1 ? `${received.message.from} (${folder.name})` : received.message.from;
  }

  private async show(batch: MessageBatch<Received>): Promise<void> {
    const reply = 'Reply';
    const showAll = 'Show Messages';
    const audit = 'Show Audit Log';
    const first = batch.messages[0]!;
    const who = this.sender(first);
    if (batch.messages.length === 1) {
      const picked = await vscode.window.showInformationMessage(
        `${who}: ${shorten(first.message.message)}`,
        reply,
        audit,
      );
      if (picked === reply) await this.reply(first);
      else if (picked === audit) await vscode.commands.executeCommand(this.showAuditLogCommand);
      return;
    }
    const count = batch.messages.length + batch.dropped;
    const picked = await vscode.window.showInformationMessage(
      `${who} sent ${count} messages`,
      showAll,
      audit,
    );
    if (picked === audit) {
      await vscode.commands.executeCommand(this.showAuditLogCommand);
      return;
    }
    if (picked !== showAll) return;
    const chosen = await vscode.window.showQuickPick(
      batch.messages.map((received) => ({
        label: shorten(received.message.message, 200),
        description: new Date(received.message.sentAt).toLocaleTimeString(),
        detail: received.message.to === 'owner' ? 'to you' : 'to everyone',
        received,
      })),
      {
        placeHolder: `Messages from ${who}${batch.dropped > 0 ? ` (${batch.dropped} older ones are in the audit log)` : ''}; pick one to reply`,
        matchOnDetail: true,
      },
    );
    if (chosen) await this.reply(chosen.received);
  }

  /** Asks for the reply and sends it to the sender as the owner (audited, transport `vscode`). */
  private async reply(received: Received): Promise<void> {
    const { from, message } = received.message;
    const text = await vscode.window.showInputBox({
      prompt: `Reply to ${from}`,
      placeHolder: `Re: ${shorten(message, 80)}`,
      validateInput: (value) => (value.trim() === '' ? 'Type a message' : null),
    });
    if (text === undefined) return;
    try {
      const sent = await runOwnerOperation(received.target.server, 'broadcast_message', {
        message: text,
        to: from,
      });
      vscode.window.setStatusBarMessage(`Reply sent to ${from} (${sent.delivered} recipient(s))`, 5000);
    } catch (err) {
      void vscode.window.showErrorMessage(`MCP Workspace: reply not sent: ${(err as Error).message}`);
    }
  }
}
