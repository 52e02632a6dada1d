import type { NextFunction, Request, RequestHandler, Response } from 'express';
import express from 'express';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { WorkspaceError } from '../protocol/errors';
import { assertJsonDepth } from './jsonDepth';

/** Bodies from this size on are decoded and parsed in separate turns of the event loop. */
const LARGE_BODY_BYTES = 1024 * 1024;

/**
 * The JSON body parser of every HTTP endpoint: the body is read raw (up to `limit` bytes), its
 * nesting checked before parsing (see {@link assertJsonDepth}), then decoded and parsed. A large
 * body (a 10 MiB file write) is decoded and parsed in separate turns, so no single step holds the
 * event loop for both and other requests (`/health`) are answered in between. Only objects and
 * arrays are accepted, as JSON APIs expect; anything else is INVALID_ARGUMENT.
 */
export function jsonBody(limit: number): RequestHandler[] {
  const raw = express.raw({ limit, type: ['application/json', 'application/*+json'] });
  const parse = (req: Request, _res: Response, next: NextFunction): void => {
    const body: unknown = req.body;
    if (!Buffer.isBuffer(body)) {
      next();
      return;
    }
    const charset = /;\s*charset=["']?([^;"'\s]+)/i.exec(req.headers['content-type'] ?? '')?.[1];
    if (charset !== undefined && !/^utf-?8$/i.test(charset)) {
      next(new WorkspaceError('INVALID_ARGUMENT', `Send the JSON body as UTF-8, not ${charset}.`));
      return;
    }
    void (async () => {
      const large = body.length >= LARGE_BODY_BYTES;
      assertJsonDepth(body);
      if (large) await nextTurn();
      const text = body.toString('utf8');
      if (large) await nextTurn();
      const first = /\S/.exec(text)?.[0];
      if (first !== undefined && first !== '{' && first !== '[')
        throw new SyntaxError('not an object or array');
      req.body = first === undefined ? undefined : (JSON.parse(text) as unknown);
    })().then(() => next(), next);
  };
  return [raw, parse];
}
