import type { RunningWorkspaceServer } from '../server';
import type { OperationInput, OperationName, OperationOutput } from '../protocol/operations';
import { OWNER } from '../protocol/principal';

/** The transport recorded for everything the owner does from the VS Code UI. */
export const VSCODE_TRANSPORT = 'vscode';

/**
 * Runs one operation as the owner, from the VS Code UI, through the server's operation dispatcher
 * (the one path every transport uses): in a session opened for it and closed after, so the action is
 * validated, decided and written to the audit log with the owner as actor and `vscode` as transport.
 */
export async function runOwnerOperation<N extends OperationName>(
  server: Pick<RunningWorkspaceServer, 'dispatcher' | 'sessions'>,
  name: N,
  input: OperationInput<N>,
): Promise<OperationOutput<N>> {
  const session = await server.dispatcher.initSession(
    OWNER,
    { tools: [name] },
    { transport: VSCODE_TRANSPORT },
  );
  try {
    return await server.dispatcher.run(name, input, {
      principal: OWNER,
      sessionId: session.sessionId,
      transport: VSCODE_TRANSPORT,
    });
  } finally {
    server.sessions.end(session.sessionId, 'closed');
  }
}
