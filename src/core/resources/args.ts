import { WorkspaceError } from '../../protocol/errors';
import { quote } from '../shared/text';
import type { Encoding } from './types';

/** `expectedRevision` value meaning "the file must not exist yet". */
export const MUST_NOT_EXIST = 'none';

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** `value` as a positive integer option named `name`, or `fallback` when it is absent; throws INVALID_ARGUMENT. */
export function positiveInt(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new WorkspaceError('INVALID_ARGUMENT', `${name} must be a positive integer.`);
  }
  return value;
}

/** The requested wire encoding, or undefined for "choose from the content"; throws INVALID_ENCODING. */
export function validateEncoding(encoding: unknown): Encoding | undefined {
  if (encoding === undefined || encoding === 'utf8' || encoding === 'base64') return encoding;
  throw new WorkspaceError('INVALID_ENCODING', 'encoding must be "utf8" or "base64".');
}

/** The REVISION_CONFLICT error for `rel`, which is at `currentRevision` (null: it does not exist). */
export function conflict(rel: string, currentRevision: string | null): WorkspaceError {
  const state = currentRevision === null ? 'does not exist' : `is at revision ${currentRevision}`;
  return new WorkspaceError(
    'REVISION_CONFLICT',
    `${quote(rel)} ${state}, not the expected revision; read it again and retry.`,
    { currentRevision },
  );
}

/** Throws REVISION_CONFLICT unless `current` is the `expected` revision (when one was given). */
export function assertExpected(expected: string | undefined, current: string | null, rel: string): void {
  if (expected === undefined) return;
  if (typeof expected !== 'string' || expected === '') {
    throw new WorkspaceError(
      'INVALID_ARGUMENT',
      `expectedRevision must be a revision or "${MUST_NOT_EXIST}" (the file must not exist).`,
    );
  }
  const ok = expected === MUST_NOT_EXIST ? current === null : current === expected;
  if (!ok) throw conflict(rel, current);
}

/** Throws FILE_TOO_LARGE when `size` is over `limit` bytes. */
export function assertSize(size: number, limit: number): void {
  if (size > limit) {
    throw new WorkspaceError(
      'FILE_TOO_LARGE',
      `The content is ${size} bytes, over the ${limit}-byte limit.`,
      {
        limit,
      },
    );
  }
}

/** Decodes wire content to bytes, checking the size cap before allocating. */
export function decodeContent(content: string, encoding: Encoding, limit: number): Buffer {
  if (typeof content !== 'string') {
    throw new WorkspaceError('INVALID_ARGUMENT', 'content must be a string.');
  }
  if (encoding === 'utf8') {
    assertSize(Buffer.byteLength(content, 'utf8'), limit);
    return Buffer.from(content, 'utf8');
  }
  if (!BASE64.test(content)) {
    throw new WorkspaceError(
      'INVALID_ENCODING',
      'content is not valid base64 (use A-Z, a-z, 0-9, + and / with correct = padding, no whitespace).',
    );
  }
  const padding = content.endsWith('==') ? 2 : content.endsWith('=') ? 1 : 0;
  assertSize((content.length / 4) * 3 - padding, limit);
  return Buffer.from(content, 'base64');
}
