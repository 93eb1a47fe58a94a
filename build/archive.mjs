// Writes the release archives: .tar.gz (POSIX ustar, gzip -9) and .zip (deflate), in plain Node, so a
// release needs no tar, gzip or zip program and every entry gets the same owner (0/0), mode and time.
import { writeFileSync } from 'node:fs';
import { deflateRawSync, gzipSync, constants } from 'node:zlib';

/**
 * @typedef {{ name: string, data?: Buffer, mode: number, dir?: boolean }} Entry
 * `name` uses forward slashes and never ends in '/'; directories have `dir: true` and no data.
 */

// ---------------------------------------------------------------------------------------------
// tar (ustar)

function octal(value, width) {
  // width includes the terminating NUL
  const text = value.toString(8);
  if (text.length > width - 1) throw new Error(`tar: ${value} does not fit in ${width - 1} octal digits`);
  return text.padStart(width - 1, '0') + '\0';
}

function splitUstarName(name) {
  if (Buffer.byteLength(name) <= 100) return { name, prefix: '' };
  // ustar: prefix (≤155 bytes) + '/' + name (≤100 bytes), split at a slash
  for (let i = name.indexOf('/'); i !== -1; i = name.indexOf('/', i + 1)) {
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100) return { name: rest, prefix };
  }
  throw new Error(`tar: path too long for ustar: ${name}`);
}

function tarHeader(entry, mtime) {
  const header = Buffer.alloc(512, 0);
  const { name, prefix } = splitUstarName(entry.dir ? `${entry.name}/` : entry.name);
  const put = (text, offset, width) => {
    const bytes = Buffer.from(text, 'utf8');
    if (bytes.length > width) throw new Error(`tar: field too long: ${text}`);
    bytes.copy(header, offset);
  };
  put(name, 0, 100);
  put(octal(entry.mode & 0o7777, 8), 100, 8);
  put(octal(0, 8), 108, 8); // uid
  put(octal(0, 8), 116, 8); // gid
  put(octal(entry.dir ? 0 : entry.data.length, 12), 124, 12);
  put(octal(mtime, 12), 136, 12);
  header.fill(0x20, 148, 156); // checksum is computed with its own field as spaces
  put(entry.dir ? '5' : '0', 156, 1);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  put('root', 265, 32);
  put('root', 297, 32);
  put(prefix, 345, 155);
  let sum = 0;
  for (const byte of header) sum += byte;
  put(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
  return header;
}

/** Writes `entries` as a gzip-compressed ustar archive. `mtime`: seconds since the epoch. */
export function writeTarGz(file, entries, mtime) {
  const parts = [];
  for (const entry of entries) {
    parts.push(tarHeader(entry, mtime));
    if (!entry.dir) {
      parts.push(entry.data);
      const pad = (512 - (entry.data.length % 512)) % 512;
      if (pad) parts.push(Buffer.alloc(pad, 0));
    }
  }
  parts.push(Buffer.alloc(1024, 0)); // two empty blocks end the archive
  writeFileSync(file, gzipSync(Buffer.concat(parts), { level: constants.Z_BEST_COMPRESSION }));
}

// ---------------------------------------------------------------------------------------------
// zip

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(data) {
  let crc = 0xffffffff;
  for (let i = 0; i < data.length; i++) crc = CRC_TABLE[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function dosDateTime(seconds) {
  const d = new Date(seconds * 1000);
  const year = Math.max(1980, d.getUTCFullYear());
  const time = (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | (d.getUTCSeconds() >> 1);
  const date = ((year - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate();
  return { time, date };
}

/** Writes `entries` as a zip archive (deflate; Unix modes kept in the external attributes). */
export function writeZip(file, entries, mtime) {
  const { time, date } = dosDateTime(mtime);
  const locals = [];
  const centrals = [];
  let offset = 0;
  for (const entry of entries) {
    const name = Buffer.from(entry.dir ? `${entry.name}/` : entry.name, 'utf8');
    const raw = entry.dir ? Buffer.alloc(0) : entry.data;
    const method = entry.dir ? 0 : 8;
    const body = entry.dir ? raw : deflateRawSync(raw, { level: constants.Z_BEST_COMPRESSION });
    const crc = entry.dir ? 0 : crc32(raw);
    if (body.length >= 0xffffffff || raw.length >= 0xffffffff) throw new Error(`zip: ${entry.name} needs zip64`);

    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed: 2.0
    local.writeUInt16LE(0x0800, 6); // names are UTF-8
    local.writeUInt16LE(method, 8);
    local.writeUInt16LE(time, 10);
    local.writeUInt16LE(date, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(raw.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    locals.push(local, name, body);

    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4); // made by: Unix, 2.0 (so the modes below are honoured)
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt16LE(time, 12);
    central.writeUInt16LE(date, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(raw.length, 24);
    central.writeUInt16LE(name.length, 28);
    // extra length, comment length, disk number, internal attributes: 0
    const unixMode = (entry.dir ? 0o040000 : 0o100000) | (entry.mode & 0o7777);
    central.writeUInt32LE(((unixMode << 16) | (entry.dir ? 0x10 : 0)) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);

    offset += local.length + name.length + body.length;
  }
  const centralSize = centrals.reduce((n, b) => n + b.length, 0);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(centralSize, 12);
  end.writeUInt32LE(offset, 16);
  writeFileSync(file, Buffer.concat([...locals, ...centrals, end]));
}
