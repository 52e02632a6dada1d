import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import * as authProtocol from 'y-protocols/auth';
import * as awarenessProtocol from 'y-protocols/awareness';
import * as syncProtocol from 'y-protocols/sync';
import { MESSAGE_SAVING, readSaving } from '../../protocol/saving';

/** y-websocket message types (the first varUint of every binary message). */
export const MESSAGE_SYNC = 0;
export const MESSAGE_AWARENESS = 1;
export const MESSAGE_AUTH = 2;
export const MESSAGE_QUERY_AWARENESS = 3;

/** A sync sub-message (y-protocols/sync), split out so updates can be checked before they apply. */
export type SyncMessage =
  { kind: 'step1'; stateVector: Uint8Array } | { kind: 'step2' | 'update'; update: Uint8Array };

/** A decoded client message; `unknown` types are ignored, as stock servers do. */
export type ClientMessage =
  | { type: 'sync'; sync: SyncMessage }
  | { type: 'awareness'; update: Uint8Array }
  | { type: 'query-awareness' }
  | { type: 'auth' }
  | { type: 'saving'; sha256: string }
  | { type: 'unknown'; code: number };

/** Decodes one client message; throws on malformed input. */
export function decodeClientMessage(data: Uint8Array): ClientMessage {
  const decoder = decoding.createDecoder(data);
  const type = decoding.readVarUint(decoder);
  switch (type) {
    case MESSAGE_SYNC: {
      const sub = decoding.readVarUint(decoder);
      const payload = decoding.readVarUint8Array(decoder);
      if (sub === syncProtocol.messageYjsSyncStep1)
        return { type: 'sync', sync: { kind: 'step1', stateVector: payload } };
      if (sub === syncProtocol.messageYjsSyncStep2)
        return { type: 'sync', sync: { kind: 'step2', update: payload } };
      if (sub === syncProtocol.messageYjsUpdate)
        return { type: 'sync', sync: { kind: 'update', update: payload } };
      throw new Error(`unknown sync message ${sub}`);
    }
    case MESSAGE_AWARENESS:
      return { type: 'awareness', update: decoding.readVarUint8Array(decoder) };
    case MESSAGE_QUERY_AWARENESS:
      return { type: 'query-awareness' };
    case MESSAGE_AUTH:
      return { type: 'auth' };
    case MESSAGE_SAVING:
      return { type: 'saving', sha256: readSaving(decoder) };
    default:
      return { type: 'unknown', code: type };
  }
}

/** A sync message of kind `step` (y-protocols' step 1 or step 2) carrying `payload`. */
function syncStep(step: number, payload: Uint8Array): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, MESSAGE_SYNC);
  encoding.writeVarUint(encoder, step);
  encoding.writeVarUint8Array(encoder, payload);
  return encoding.toUint8Array(encoder);
}

/** Sync step 1: the server's state vector, so the client sends what the server lacks. */
export function encodeSyncStep1(stateVector: Uint8Array): Uint8Array {
  return syncStep(syncProtocol.messageYjsSyncStep1, stateVector);
}

/** Sync step 2: `update` holds what the client lacks. */
export function encodeSyncStep2(update: Uint8Array): Uint8Array {
  return syncStep(syncProtocol.messageYjsSyncStep2, update);
}

/** An incremental document update. */
export function encodeUpdate(update: Uint8Array): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, MESSAGE_SYNC);
  syncProtocol.writeUpdate(encoder, update);
  return encoding.toUint8Array(encoder);
}

/** An awareness message for the given awareness update. */
export function encodeAwareness(update: Uint8Array): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, MESSAGE_AWARENESS);
  encoding.writeVarUint8Array(encoder, update);
  return encoding.toUint8Array(encoder);
}

/**
 * The standard "permission denied" auth message: stock y-websocket clients log the reason and stay
 * connected (used to tell a read-only client once that its edits are dropped).
 */
export function encodePermissionDenied(reason: string): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, MESSAGE_AUTH);
  authProtocol.writePermissionDenied(encoder, reason);
  return encoding.toUint8Array(encoder);
}

/** One entry of an awareness update: a client id, its clock and its state (null: it left). */
export interface AwarenessEntry {
  clientId: number;
  clock: number;
  state: Record<string, unknown> | null;
}

/** Decodes an awareness update (y-protocols' wire format); throws on malformed input. */
export function decodeAwarenessUpdate(update: Uint8Array): AwarenessEntry[] {
  const decoder = decoding.createDecoder(update);
  const count = decoding.readVarUint(decoder);
  const entries: AwarenessEntry[] = [];
  for (let i = 0; i < count; i++) {
    const clientId = decoding.readVarUint(decoder);
    const clock = decoding.readVarUint(decoder);
    const parsed: unknown = JSON.parse(decoding.readVarString(decoder));
    const state =
      parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)
        ? (parsed as Record<string, unknown>)
        : null;
    entries.push({ clientId, clock, state });
  }
  return entries;
}

/** Encodes awareness entries back into y-protocols' wire format. */
export function encodeAwarenessUpdate(entries: AwarenessEntry[]): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, entries.length);
  for (const entry of entries) {
    encoding.writeVarUint(encoder, entry.clientId);
    encoding.writeVarUint(encoder, entry.clock);
    encoding.writeVarString(encoder, JSON.stringify(entry.state));
  }
  return encoding.toUint8Array(encoder);
}

export { awarenessProtocol };
