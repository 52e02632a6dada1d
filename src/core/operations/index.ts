/**
 * The operation dispatcher: the one path every operation takes, from every transport and the VS Code
 * UI. Adapters map their wire format to one call here and back.
 */
export {
  OperationDispatcher,
  type AuditFeedSink,
  type ExecutionSink,
  type InitMeta,
  type ServerEvent,
} from './dispatcher';
export type { McpToolResult } from './handlers/mcpservers';
export type { CallContext, DispatcherDeps } from './types';
export { maySeeAuditRecord } from './visibility';
