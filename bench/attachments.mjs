// The web app's file encryption (web/js/filecrypt.js) under node: MB/s to encrypt and decrypt
// files of the given sizes, median of the given runs. Run by bench/attachments.py.
import { createRequire } from 'node:module';
import { webcrypto } from 'node:crypto';

const require = createRequire(import.meta.url);
globalThis.nacl = require('tweetnacl');
const files = await import('../web/js/filecrypt.js');

const [sizeMb, runs] = process.argv.slice(2).map(Number);
const data = new Uint8Array(sizeMb * 1_000_000);
for (let at = 0; at < data.length; at += 65536) webcrypto.getRandomValues(data.subarray(at, at + 65536));
const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const enc = [];
const dec = [];
for (let i = 0; i < runs; i += 1) {
  let t = performance.now();
  const { ref, blob } = await files.sealFile(data, 'b_bench', 'photo.jpg', 'image/jpeg');
  enc.push(sizeMb / ((performance.now() - t) / 1000));
  t = performance.now();
  await files.decryptFile(blob, ref);
  dec.push(sizeMb / ((performance.now() - t) / 1000));
}
process.stdout.write(JSON.stringify({ encrypt_mb_s: median(enc), decrypt_mb_s: median(dec), encrypt_runs: enc, decrypt_runs: dec }));
