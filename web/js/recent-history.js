// @ts-check
// Recent history for new followers (docs/protocol.md, section 23): a manager's signed "last N
// days" choice for a public tribe, believed only when a device this browser verifies as one of
// the tribe's managers signed it, never on the server's word. The same rules as
// bocage/client/recent_history.py; pure, runs under node.
import { HISTORY, StatementError, checkShape, signSeed, signStatement, verifyStatement } from './certs.js';
import { isManager } from './questions.js';

/** @typedef {import('./certs.js').Statement} Statement */

/**
 * This manager's choice for a tribe, signed by this device.
 * @param {{org_id: string, device_id: string, signSecretKey: Uint8Array}} device
 * @param {string} channelId
 * @param {number} days
 * @param {number} now epoch seconds
 * @returns {Statement}
 */
export function historyStatement(device, channelId, days, now) {
  return signStatement(
    { purpose: HISTORY, org_id: device.org_id, channel_id: channelId, days, issued_at: now, by_device: device.device_id },
    signSeed(device),
  );
}

/**
 * The choice if a usable device of a manager of this tribe signed it for this tribe; null when
 * the server serves none; `{warning}` when it serves one that is not to be believed.
 * @param {any} view this browser's trust view
 * @param {any} state the tribe's verified membership state
 * @param {string} orgId
 * @param {string} channelId
 * @param {unknown} statement
 * @returns {{days: number, issued_at: number} | {warning: {code: string, message: string}} | null}
 */
export function verifiedChoice(view, state, orgId, channelId, statement) {
  if (statement === null || statement === undefined) return null;
  const refused = (message) => ({ warning: { code: 'invalid_history', message: `${channelId}: ${message}` } });
  let byDevice;
  try {
    byDevice = String(checkShape(statement, HISTORY).by_device);
  } catch (err) {
    if (err instanceof StatementError) return refused('the recent-history choice is malformed: new followers read from joining');
    throw err;
  }
  const signer = view?.usable(byDevice);
  if (!signer || !isManager(view, state, byDevice, signer.member_id)) {
    return refused("the recent-history choice is not signed by a manager's certified device");
  }
  try {
    const checked = verifyStatement(statement, HISTORY, signer.sign_public_key);
    if (checked.org_id !== orgId || checked.channel_id !== channelId) return refused('the recent-history choice is for another tribe');
    return { days: Number(checked.days), issued_at: Number(checked.issued_at) };
  } catch (err) {
    if (err instanceof StatementError) return refused('the recent-history choice does not verify');
    throw err;
  }
}
