/**
 * A minimal POSIX tar (ustar + pax extended headers) writer for build contexts, so that the
 * context the engine receives is exactly what the confined walk read. Private to the Docker runtime.
 */

const BLOCK = 512;

/** Writes `value` as ASCII into `header` at `offset`, at most `length` bytes. */
function put(header: Buffer, offset: number, length: number, value: string): void {
  header.write(value.slice(0, length), offset, length, 'ascii');
}

/** Writes an octal number field (NUL-terminated) of `length` bytes. */
function putOctal(header: Buffer, offset: number, length: number, value: number): void {
  put(
    header,
    offset,
    length,
    Math.floor(value)
      .toString(8)
      .padStart(length - 1, '0') + '\0',
  );
}

/** Whether a name fits the 100-byte ustar name field as plain ASCII. */
function fitsUstar(name: string, limit: number): boolean {
  return Buffer.byteLength(name) < limit && /^[\x20-\x7e]*$/.test(name);
}

/** Zero padding up to the next 512-byte boundary. */
function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return Buffer.alloc(rest === 0 ? 0 : BLOCK - rest);
}

/** One pax record `"<len> key=value\n"`, where len counts the whole record. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(body) + 1;
  while (String(length).length + Buffer.byteLength(body) !== length) length++;
  return `${length}${body}`;
}

/** A 512-byte header block with its checksum. */
function header(fields: {
  name: string;
  mode: number;
  size: number;
  mtimeMs: number;
  type: '0' | '2' | '5' | 'x';
  linkname?: string;
}): Buffer {
  const block = Buffer.alloc(BLOCK);
  put(block, 0, 100, fields.name);
  putOctal(block, 100, 8, fields.mode);
  putOctal(block, 108, 8, 0);
  putOctal(block, 116, 8, 0);
  putOctal(block, 124, 12, fields.size);
  putOctal(block, 136, 12, Math.max(0, fields.mtimeMs / 1000));
  block.fill(' ', 148, 156);
  put(block, 156, 1, fields.type);
  put(block, 157, 100, fields.linkname ?? '');
  put(block, 257, 6, 'ustar\0');
  put(block, 263, 2, '00');
  let sum = 0;
  for (const byte of block) sum += byte;
  put(block, 148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
  return block;
}

/** An entry's header blocks, preceded by a pax header when its name or link target does not fit ustar. */
function entryHeader(
  name: string,
  fields: { mode: number; size: number; mtimeMs: number; type: '0' | '2' | '5'; linkname?: string },
): Buffer {
  const parts: Buffer[] = [];
  const records: string[] = [];
  if (!fitsUstar(name, 100)) records.push(paxRecord('path', name));
  if (fields.linkname !== undefined && !fitsUstar(fields.linkname, 100))
    records.push(paxRecord('linkpath', fields.linkname));
  if (records.length > 0) {
    const pax = Buffer.from(records.join(''), 'utf8');
    parts.push(
      header({ name: 'PaxHeader', mode: 0o644, size: pax.length, mtimeMs: fields.mtimeMs, type: 'x' }),
    );
    parts.push(pax, padding(pax.length));
  }
  const shortName = fitsUstar(name, 100) ? name : `pax/${name.length}`;
  const shortLink =
    fields.linkname === undefined || fitsUstar(fields.linkname, 100) ? fields.linkname : 'pax-link';
  parts.push(
    header({ ...fields, name: shortName, ...(shortLink !== undefined ? { linkname: shortLink } : {}) }),
  );
  return Buffer.concat(parts);
}

/**
 * The header blocks of a regular file entry of `size` bytes: stream exactly `size` bytes of content
 * after it, then {@link tarPadding}(size).
 */
export function tarFileHeader(path: string, size: number, mode: number, mtimeMs: number): Buffer {
  return entryHeader(path, { mode, size, mtimeMs, type: '0' });
}

/** The zero padding that follows `size` bytes of file content, up to the next 512-byte block. */
export function tarPadding(size: number): Buffer {
  return padding(size);
}

/** A regular file entry with its content. */
export function tarFile(path: string, content: Buffer, mode: number, mtimeMs: number): Buffer {
  return Buffer.concat([
    tarFileHeader(path, content.length, mode, mtimeMs),
    content,
    padding(content.length),
  ]);
}

/** A directory entry (`path/`). */
export function tarDirectory(path: string, mode: number, mtimeMs: number): Buffer {
  return entryHeader(`${path}/`, { mode, size: 0, mtimeMs, type: '5' });
}

/** A symbolic link entry: only its target text ships, never what it points to. */
export function tarSymlink(path: string, target: string, mtimeMs: number): Buffer {
  return entryHeader(path, { mode: 0o777, size: 0, mtimeMs, type: '2', linkname: target });
}

/** The two zero blocks that end an archive. */
export function tarEnd(): Buffer {
  return Buffer.alloc(BLOCK * 2);
}
