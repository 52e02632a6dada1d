import * as Y from 'yjs';
import type { AwarenessCursor } from './types';

/** A remote user's cursor, resolved against the shared text (offsets into it). */
export interface RemoteCursor {
  clientId: number;
  /** The name the server stamped from the user's token. */
  name: string;
  anchor: number;
  head: number;
  /** Index into {@link CURSOR_COLORS}. */
  color: number;
}

/** Colours of remote users (readable on light and dark themes), one per client id. */
export const CURSOR_COLORS = [
  '#e5534b',
  '#2f81f7',
  '#3fb950',
  '#d29922',
  '#a371f7',
  '#db61a2',
  '#39c5cf',
  '#f0883e',
] as const;

/** The colour index of a client: stable for its id. */
export function colorOf(clientId: number): number {
  return (((clientId * 2654435761) >>> 0) % CURSOR_COLORS.length) as number;
}

/** The awareness `cursor` field for a selection of the shared text (shared offsets). */
export function encodeCursor(text: Y.Text, anchor: number, head: number): AwarenessCursor {
  return {
    anchor: Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(text, anchor)),
    head: Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(text, head)),
  };
}

function resolve(doc: Y.Doc, text: Y.Text, json: unknown): number | null {
  if (json === null || typeof json !== 'object') return null;
  try {
    const position = Y.createAbsolutePositionFromRelativePosition(
      Y.createRelativePositionFromJSON(json),
      doc,
    );
    return position && position.type === text ? position.index : null;
  } catch {
    return null;
  }
}

/**
 * The cursors of everyone but `localId` that carry a `cursor` and a server-stamped `user`, resolved
 * to offsets of the shared text; states that do not resolve (another document, malformed) are left out.
 */
export function remoteCursors(
  doc: Y.Doc,
  text: Y.Text,
  states: Map<number, Record<string, unknown>>,
  localId: number,
): RemoteCursor[] {
  const cursors: RemoteCursor[] = [];
  for (const [clientId, state] of states) {
    if (clientId === localId) continue;
    const cursor = state['cursor'] as Partial<AwarenessCursor> | undefined;
    const user = state['user'] as { name?: unknown } | undefined;
    if (!cursor || typeof user?.name !== 'string') continue;
    const head = resolve(doc, text, cursor.head);
    if (head === null) continue;
    const anchor = resolve(doc, text, cursor.anchor) ?? head;
    cursors.push({ clientId, name: user.name, anchor, head, color: colorOf(clientId) });
  }
  return cursors;
}
