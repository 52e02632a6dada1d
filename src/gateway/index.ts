/**
 * The transport adapters: each maps its wire format (MCP, REST + OpenAPI, WebSocket, y-websocket) to one
 * dispatcher call and back, after the shared admission checks (Host, Origin, bearer token).
 */
import type { McpGateway, McpGatewayDeps } from './mcp';

export {
  createAdmission,
  isAllowedOrigin,
  isLoopbackHost,
  LOOPBACK_BIND_HOSTS,
  principalOf,
  WWW_AUTHENTICATE,
  type Admission,
  type AdmissionOptions,
  type Admitted,
} from './auth';
export { jsonBody } from './jsonBody';
export { buildOpenApi } from './openapi';
export { createRestRouter, expressPath, sendError, SESSION_HEADER, type RestGatewayDeps } from './rest';
export { WS_PATH, WsGateway, type WsGatewayDeps } from './ws';
export { COLLAB_PREFIX, CollabGateway, type CollabGatewayDeps } from './collab';
export { refuseUpgrade, routeUpgrades, type UpgradeRoute } from './upgrade';
export type { McpGateway, McpGatewayDeps } from './mcp';

/**
 * Builds the MCP adapter, loading the MCP SDK with it: a server no MCP client uses never pays for it.
 */
export async function loadMcpGateway(deps: McpGatewayDeps): Promise<McpGateway> {
  const { McpGateway: Gateway } = await import('./mcp');
  return new Gateway(deps);
}
