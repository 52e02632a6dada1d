import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';

/**
 * The one message MCP Workspace adds to the y-websocket protocol of `/collab`: an editor bound to a
 * shared document is about to write the file itself (VS Code's save, auto-save or Save All), with
 * the SHA-256 of the bytes it writes. The server then knows that file content as an earlier state
 * of the shared text, not a change made outside: it is not merged in again (which would duplicate
 * the typing it holds) and the shared text is written over it. The server answers with the same
 * message once it holds the hash, so the save waits for that. Stock y-websocket clients never send
 * it and ignore the type.
 */
export const MESSAGE_SAVING = 100;

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** The saving message for `sha256` (lower-case hex). */
export function encodeSaving(sha256: string): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, MESSAGE_SAVING);
  encoding.writeVarString(encoder, sha256);
  return encoding.toUint8Array(encoder);
}

/** The hash a saving message carries, read after its type; throws unless it is SHA-256 hex. */
export function readSaving(decoder: decoding.Decoder): string {
  const sha256 = decoding.readVarString(decoder);
  if (!SHA256_HEX.test(sha256)) throw new Error('a saving message carries a SHA-256 in hex');
  return sha256;
}
