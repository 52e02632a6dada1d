import type { OperationName } from '../../../protocol/operations';
import type { DispatcherDeps, Handlers } from '../types';
import { adminHandlers } from './admin';
import { coordinationHandlers } from './coordination';
import { execHandlers } from './exec';
import { fileHandlers } from './files';
import { pairHandlers } from './pair';
import type { ExecutionAuditor } from './sandbox';

/** Every operation's handler, grouped by what it touches. */
export function createHandlers(
  deps: DispatcherDeps,
  auditExecution: ExecutionAuditor,
): Handlers<OperationName> {
  return {
    ...adminHandlers(deps),
    ...fileHandlers(deps),
    ...execHandlers(deps, auditExecution),
    ...coordinationHandlers(deps),
    ...pairHandlers(deps),
  };
}
