// Draws the marketplace icon (media/icon.png, 128x128): a shield with a prompt, in the extension's
// colours. Generated at build time so no binary is kept in the repository.
const { deflateSync } = require('node:zlib');
const { writeFileSync, mkdirSync } = require('node:fs');
const { join } = require('node:path');

const SIZE = 128;
const BG = [0x1f, 0x3a, 0x5f];
const FG = [0xff, 0xff, 0xff];
const ACCENT = [0x4f, 0xc3, 0xf7];

/** Signed distance helpers for a few shapes, in pixel units. */
function insideShield(x, y) {
  const cx = 64;
  const top = 18;
  const bottom = 112;
  if (y < top || y > bottom) return false;
  const halfWidth = y < 70 ? 40 : 40 * Math.sqrt(Math.max(0, 1 - ((y - 70) / (bottom - 70)) ** 2));
  return Math.abs(x - cx) <= halfWidth - (y < 28 ? (28 - y) * 1.2 : 0);
}

function onSegment(x, y, ax, ay, bx, by, width) {
  const dx = bx - ax;
  const dy = by - ay;
  const t = Math.max(0, Math.min(1, ((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy)));
  return Math.hypot(x - (ax + t * dx), y - (ay + t * dy)) <= width / 2;
}

function pixel(x, y) {
  const r = 22;
  const cx = Math.min(Math.max(x, r), SIZE - r);
  const cy = Math.min(Math.max(y, r), SIZE - r);
  if (Math.hypot(x - cx, y - cy) > r) return [0, 0, 0, 0];
  if (onSegment(x, y, 46, 50, 62, 64, 9) || onSegment(x, y, 62, 64, 46, 78, 9)) return [...FG, 255];
  if (onSegment(x, y, 68, 82, 84, 82, 9)) return [...ACCENT, 255];
  if (insideShield(x, y)) return [...BG.map((c) => Math.min(255, c + 28)), 255];
  return [...BG, 255];
}

function crc32(buf) {
  let c;
  let crc = 0xffffffff;
  for (let n = 0; n < buf.length; n++) {
    c = (crc ^ buf[n]) & 0xff;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    crc = (crc >>> 8) ^ c;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** Writes media/icon.png and returns its path. */
function makeIcon(out = join(__dirname, '..', 'media', 'icon.png')) {
  const raw = Buffer.alloc((SIZE * 4 + 1) * SIZE);
  for (let y = 0; y < SIZE; y++) {
    raw[y * (SIZE * 4 + 1)] = 0;
    for (let x = 0; x < SIZE; x++) {
      // 2x2 supersampling for smooth edges.
      const samples = [
        pixel(x + 0.25, y + 0.25),
        pixel(x + 0.75, y + 0.25),
        pixel(x + 0.25, y + 0.75),
        pixel(x + 0.75, y + 0.75),
      ];
      const offset = y * (SIZE * 4 + 1) + 1 + x * 4;
      for (let c = 0; c < 4; c++) raw[offset + c] = Math.round(samples.reduce((s, p) => s + p[c], 0) / 4);
    }
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(SIZE, 0);
  header.writeUInt32BE(SIZE, 4);
  header[8] = 8;
  header[9] = 6;
  const png = Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
  mkdirSync(join(out, '..'), { recursive: true });
  writeFileSync(out, png);
  return out;
}

module.exports = { makeIcon };

if (require.main === module) makeIcon();
