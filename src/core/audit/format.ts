import { readFile } from 'node:fs/promises';
import { isErrno } from '../shared/fs';
export { lineFromBody, serializeBody } from '../../protocol/audit';

/** File name of the JSONL log inside the state directory. */
export const AUDIT_FILE = 'audit.jsonl';
/** File name of the chain-head file inside the state directory. */
export const HEAD_FILE = 'audit.head';
/** `prev` of the first record. */
export const GENESIS = '0'.repeat(64);
/** Byte length of a line's trailing `,"hash":"<64 hex>"}` (newline excluded). */
export const HASH_SUFFIX_LENGTH = 75;
/** Fixed size of the head file, so it can be rewritten in place with a single pwrite. */
export const HEAD_FILE_SIZE = 128;

const HEX64 = /^[0-9a-f]{64}$/;

/** Chain head as stored in the head file. */
export interface ChainHead {
  seq: number;
  hash: string;
}

/** Head file contents, space-padded to {@link HEAD_FILE_SIZE} bytes. */
export function encodeHead(head: ChainHead): Buffer {
  const buf = Buffer.alloc(HEAD_FILE_SIZE, 0x20);
  buf.write(JSON.stringify({ seq: head.seq, hash: head.hash }));
  buf[HEAD_FILE_SIZE - 1] = 0x0a;
  return buf;
}

/** Reads the head file: the head, null when missing, or 'corrupt' when unreadable. */
export async function readHeadFile(path: string): Promise<ChainHead | null | 'corrupt'> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return null;
    throw err;
  }
  try {
    const parsed = JSON.parse(text) as Partial<ChainHead>;
    if (
      typeof parsed.seq === 'number' &&
      Number.isSafeInteger(parsed.seq) &&
      parsed.seq >= 0 &&
      typeof parsed.hash === 'string' &&
      HEX64.test(parsed.hash)
    ) {
      return { seq: parsed.seq, hash: parsed.hash };
    }
  } catch {
    // fall through: unparsable counts as corrupt
  }
  return 'corrupt';
}
