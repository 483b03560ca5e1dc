// @ts-check
// Recent history for new followers (docs/protocol.md, section 23): a manager's signed "last N
// days" choice for a public tribe, believed only when a device this browser verifies as one of
// the tribe's managers signed it, never on the server's word. The same rules as
// bocage/client/recent_history.py; pure, runs under node.
import { HISTORY, StatementError, checkShape, signSeed, signStatement, verifyStatement } from './certs.js';
import { isManager } from './questions.js';
import { datedAhead } from './ratchet.js';

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
 * The choice if a usable device of a manager of this tribe signed it for this tribe, dated no
 * further ahead of `now` than the clock skew (a later date would outrank every real later choice
 * until then); null when the server serves none; `{warning}` when it serves one that is not to be
 * believed.
 * @param {any} view this browser's trust view
 * @param {any} state the tribe's verified membership state
 * @param {string} orgId
 * @param {string} channelId
 * @param {unknown} statement
 * @param {number} now this device's clock, epoch seconds
 * @returns {{days: number, issued_at: number, by_device: string} | {warning: {code: string, message: string}} | null}
 */
export function verifiedChoice(view, state, orgId, channelId, statement, now) {
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
  if (!signer || !signsForManagers(view, state, byDevice)) {
    return refused("the recent-history choice is not signed by a manager's certified device");
  }
  try {
    const checked = verifyStatement(statement, HISTORY, signer.sign_public_key);
    if (checked.org_id !== orgId || checked.channel_id !== channelId) return refused('the recent-history choice is for another tribe');
    if (datedAhead(Number(checked.issued_at), now)) {
      return refused('the recent-history choice is dated in the future: new followers read from joining');
    }
    return { days: Number(checked.days), issued_at: Number(checked.issued_at), by_device: byDevice };
  } catch (err) {
    if (err instanceof StatementError) return refused('the recent-history choice does not verify');
    throw err;
  }
}

/**
 * Whether `byDevice` is, now, a usable device of a manager of this tribe (an admin or owner, or an
 * author in its verified log): asked of a new choice and, at every asking, of the one believed
 * before, whose signer may have been revoked, demoted or have left since.
 * @param {any} view
 * @param {any} state
 * @param {string} byDevice
 */
export function signsForManagers(view, state, byDevice) {
  const signer = byDevice ? view?.usable(byDevice) : null;
  return Boolean(signer) && isManager(view, state, byDevice, signer.member_id);
}

/**
 * Whether the choice kept in the ring is withdrawn at this asking: it opens days, the choice just
 * verified (`found`) does not replace it, and its signer is no longer a manager's usable device.
 * Then the device shares 0 days, and the warning is `withdrawnWarning`.
 * @param {any} view
 * @param {any} state
 * @param {{days: number, issued_at: number, by_device?: string} | null} kept
 * @param {{days: number, issued_at: number} | {warning: object} | null} found
 */
export function withdrawsKept(view, state, kept, found) {
  if (!kept || kept.days <= 0) return false;
  if (found && 'issued_at' in found && found.issued_at >= kept.issued_at) return false;
  return !signsForManagers(view, state, kept.by_device || '');
}

/** @param {string} channelId */
export function withdrawnWarning(channelId) {
  return {
    code: 'invalid_history',
    message: `${channelId}: the recent-history choice was signed by a device that is no longer a manager's: new followers read from joining`,
  };
}
