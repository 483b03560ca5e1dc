// Runs the web app's file encryption (web/js/filecrypt.js) under node for test_files_compat.py:
// reads a JSON array of commands on stdin, writes a JSON array of results (errors as their class).
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const require = createRequire(import.meta.url);
globalThis.nacl = require('tweetnacl');
const wire = await import('../../web/js/wire.js');
const files = await import('../../web/js/filecrypt.js');

const d = wire.b64d;
const e = wire.b64e;

const commands = {
  async encrypt({ data, key, prefix }) {
    return e(files.encryptFile(d(data), d(key), d(prefix)));
  },
  async seal({ data, blob_id, name, mime }) {
    const { ref, blob } = await files.sealFile(d(data), blob_id, name, mime);
    return { ref: files.fileRefContent(ref), blob: e(blob) };
  },
  async decrypt({ blob, ref }) {
    try {
      return { data: e(await files.decryptFile(d(blob), files.parseFileRef(ref))) };
    } catch (err) {
      if (!(err instanceof files.FileCryptoError)) throw err;
      return { error: err.constructor.name, message: err.message };
    }
  },
  async parse_ref({ ref }) {
    try {
      return files.fileRefContent(files.parseFileRef(ref));
    } catch (err) {
      if (!(err instanceof wire.CryptoError)) throw err;
      return { error: err.constructor.name, message: err.message };
    }
  },
  async sizes({ sizes }) {
    return sizes.map((n) => [files.paddedSize(n), files.blobSize(n)]);
  },
};

const input = JSON.parse(readFileSync(0, 'utf8'));
const out = [];
for (const { op, ...args } of input) out.push(await commands[op](args));
process.stdout.write(JSON.stringify(out));
