import type { AuthInfo } from '@modelcontextprotocol/server';

declare global {
  namespace Express {
    interface Request {
      /** Set by the bearer-token middleware; the MCP transports surface it as `authInfo`. */
      auth?: AuthInfo;
    }
  }
}
