// Verifying a roster of 1,000 devices and sealing a sender key to them, in the web client's JS
// under node (web/js/certs.js, membership.js, wire.js), as a browser would before its first send.
//
// The organisation: a root owner and N members, each invited by the owner's device with a
// ticket (so each member costs a ticket, a member certificate and a device certificate: three
// Ed25519 verifications), all added to one group by N signed membership entries.
//
// - cold: a fresh client: the chain of every device to the pinned root (TrustView.create, then
//   usable() for each), the membership log replayed from entry 0, the effective roster, and the
//   chain state sealed to every device;
// - warm: the same client again with its cache of checked signatures and its kept log head (what
//   a tab does on its next send once the roster moved): nothing is verified twice.
//
//     node bench/trust_roster.mjs [--devices 1000] [--repeat 3]
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
globalThis.nacl = require('tweetnacl');
const wire = await import('../web/js/wire.js');
const certs = await import('../web/js/certs.js');
const membership = await import('../web/js/membership.js');

const arg = (name, fallback) => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? Number(process.argv[at + 1]) : fallback;
};
const COUNT = arg('devices', 1000);
const REPEAT = arg('repeat', 3);
const ORG = 'o_aaaaaaaaaaaaaaaa';
const CHANNEL = 'c_aaaaaaaaaaaaaaaa';
const T = 1767225600;
const id = (prefix, n) => `${prefix}_${wire.base32Lower(new Uint8Array([0, 0, 0, 0, 0, 0, (n >> 16) & 255, (n >> 8) & 255, n & 255, 7]))}`;

async function device(memberId, identitySeed, ticketKey = null) {
  const keys = wire.generateDeviceKeys();
  const deviceId = await wire.deviceIdFor(keys.signPublicKey);
  const body = {
    purpose: certs.DEVICE_CERT,
    org_id: ORG,
    member_id: memberId,
    device_id: deviceId,
    sign_public_key: wire.b64e(keys.signPublicKey),
    box_public_key: wire.b64e(keys.boxPublicKey),
    identity_key: certs.publicKeyOf(identitySeed),
    ticket_key: ticketKey,
    issued_at: T,
  };
  const cert = certs.signStatement(body, identitySeed);
  const row = { device_id: deviceId, member_id: memberId, sign_public_key: body.sign_public_key, box_public_key: body.box_public_key, device_cert: cert, ticket: null, revocation: null };
  return { row, keys, deviceId };
}

async function organisation() {
  const ownerId = id('m', 0);
  const ownerIk = wire.randomBytes(32);
  const root = await certs.fingerprint(certs.publicKeyOf(ownerIk));
  const rootCert = certs.signStatement(
    { purpose: certs.MEMBER_CERT, org_id: ORG, member_id: ownerId, identity_key: certs.publicKeyOf(ownerIk), display_name: 'Owner', ticket_key: null, root: true, issued_at: T },
    ownerIk,
  );
  const owner = await device(ownerId, ownerIk);
  const ownerSigner = { ...owner.keys, org_id: ORG, device_id: owner.deviceId };
  const members = [{ member_id: ownerId, member_cert: rootCert, ticket: null, role_statements: [], removal: null }];
  const devices = [owner.row];
  const entries = [membership.signEntry(ownerSigner, CHANNEL, null, { op: 'create', memberId: ownerId, role: 'author', kind: 'group' }, T)];
  let state = { channel_id: CHANNEL, kind: 'group', members: { [ownerId]: 'author' }, seq: 0, head: await certs.statementHash(entries[0]) };
  for (let n = 1; n < COUNT; n += 1) {
    const memberId = id('m', n);
    const { seed, ticket } = certs.newTicket(ownerSigner, { grant: 'member', role: 'member', display_name: `Membre ${n}` }, T);
    const ik = wire.randomBytes(32);
    const memberCert = certs.signStatement(
      { purpose: certs.MEMBER_CERT, org_id: ORG, member_id: memberId, identity_key: certs.publicKeyOf(ik), display_name: `Membre ${n}`, ticket_key: ticket.ticket_key, root: false, issued_at: T },
      wire.b64d(seed),
    );
    members.push({ member_id: memberId, member_cert: memberCert, ticket, role_statements: [], removal: null });
    devices.push((await device(memberId, ik)).row);
    const entry = membership.signEntry(ownerSigner, CHANNEL, state, { op: 'add', memberId, role: 'member' }, T + 1);
    entries.push(entry);
    state = { ...state, seq: entry.seq, head: await certs.statementHash(entry) };
  }
  return { root, members, devices, entries, owner: { ...owner.keys, deviceId: owner.deviceId } };
}

/** One client's work before a send: verify, replay, select, seal. */
async function verifyAndSeal(org, cache, kept) {
  const started = performance.now();
  const view = await certs.TrustView.create(ORG, org.root, org.members, org.devices, { cache });
  const answer = kept ? { entries: org.entries.slice(kept.seq), head: { seq: org.entries.length - 1 } } : { entries: org.entries };
  const { state, blocked } = await membership.advance(kept, answer, view);
  if (blocked || !state) throw new Error('the log did not verify');
  const { devices, warnings } = membership.effectiveRoster(view, state, org.devices, org.owner.deviceId);
  const verified = performance.now();
  const chainKey = wire.randomBytes(32);
  const sealed = devices.map((d) => wire.sealSenderKey(org.owner, d.device_id, d.box_public_key, CHANNEL, 0, chainKey, 0));
  const done = performance.now();
  if (warnings.length || sealed.length !== COUNT - 1) throw new Error(`expected ${COUNT - 1} recipients, got ${sealed.length} (${warnings.length} warnings)`);
  return { verify: verified - started, seal: done - verified, state };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const org = await organisation();
const cold = [];
const warm = [];
for (let i = 0; i < REPEAT; i += 1) {
  const cache = new certs.VerifiedCache();
  const first = await verifyAndSeal(org, cache, null);
  cold.push(first);
  warm.push(await verifyAndSeal(org, cache, first.state));
}
const line = (name, runs) =>
  `${name.padEnd(6)} verify ${median(runs.map((r) => r.verify)).toFixed(0).padStart(6)} ms   seal ${median(runs.map((r) => r.seal)).toFixed(0).padStart(5)} ms   (${(median(runs.map((r) => r.verify)) / COUNT).toFixed(2)} ms per device)`;
console.log(`web client (JS under node ${process.version}): a roster of ${COUNT} devices, ${COUNT} membership entries, median of ${REPEAT}`);
console.log(line('cold', cold));
console.log(line('warm', warm));
