// @ts-check
// "@mention me only" (docs/protocol.md, section 17): the member's signed choice per channel, and
// whom a sender names in `notify`. The server serves the choices (GET /channels/{c}/members,
// `notify`) but is not believed: a choice counts only if a device this browser's trust view
// certifies for that very member signed it, so a forged one never tells the server when someone
// is mentioned. The same rules as bocage/client/mentions.py; pure, runs under node.
import { NOTIFY, StatementError, signSeed, signStatement, verifyStatement } from './certs.js';

/** @typedef {import('./certs.js').Statement} Statement */
/** @typedef {import('./certs.js').TrustView} TrustView */

/**
 * This member's choice for one channel, signed by this device.
 * @param {{org_id: string, member_id: string, device_id: string, signSecretKey: Uint8Array}} device
 * @param {string} channelId
 * @param {boolean} mentionsOnly
 * @param {number} now epoch seconds
 * @returns {Statement}
 */
export function notifyStatement(device, channelId, mentionsOnly, now) {
  return signStatement(
    {
      purpose: NOTIFY,
      org_id: device.org_id,
      channel_id: channelId,
      member_id: device.member_id,
      mentions_only: mentionsOnly,
      issued_at: now,
      by_device: device.device_id,
    },
    signSeed(device),
  );
}

/**
 * The members whose latest valid choice for this channel is "mentions only".
 * @param {TrustView} view
 * @param {string} orgId
 * @param {string} channelId
 * @param {Iterable<unknown>} statements
 * @returns {Set<string>}
 */
export function mentionsOnly(view, orgId, channelId, statements) {
  /** @type {Map<string, Statement>} */
  const latest = new Map();
  for (const raw of statements) {
    const claimed = /** @type {any} */ (raw);
    const signer = claimed && typeof claimed.by_device === 'string' ? view.usable(claimed.by_device) : null;
    if (!signer || signer.member_id !== claimed.member_id) continue;
    let checked;
    try {
      checked = verifyStatement(raw, NOTIFY, signer.sign_public_key);
    } catch (err) {
      if (err instanceof StatementError) continue;
      throw err;
    }
    if (checked.org_id !== orgId || checked.channel_id !== channelId) continue;
    const kept = latest.get(checked.member_id);
    if (!kept || checked.issued_at > kept.issued_at) latest.set(checked.member_id, checked);
  }
  return new Set([...latest.values()].filter((c) => c.mentions_only).map((c) => String(c.member_id)));
}

/**
 * The mentioned members to name in `notify`, in mention order.
 * @param {TrustView} view
 * @param {string} orgId
 * @param {string} channelId
 * @param {string[]} mentioned
 * @param {Iterable<unknown>} statements
 * @returns {string[]}
 */
export function toNotify(view, orgId, channelId, mentioned, statements) {
  const quiet = mentionsOnly(view, orgId, channelId, statements);
  return [...new Set(mentioned)].filter((m) => quiet.has(m));
}
