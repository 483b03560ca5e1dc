// @ts-check
// Questions to the town hall (docs/protocol.md, section 20; bocage/client/questions.py's rules):
// a follower's question sealed on this device, one box per device of the tribe's managers as
// this device verifies them (never on the server's word) and one for itself; a manager's
// answer, one box to the asker's device. Each box repeats what it is bound to.
import { verifiedFollower } from './followers.js';
import { b64d, b64e, canonicalJson, checkBoxPublicKey, nacl, randomBytes, utf8 } from './wire.js';

export const QUESTION_PURPOSE = 'bocage/question/v1';
export const ANSWER_PURPOSE = 'bocage/answer/v1';
export const MAX_TEXT = 2000;
const ADMIN_ROLES = ['admin', 'owner'];
const NOW = Number.MAX_SAFE_INTEGER; // "now" for roles: the view's current standing
const B32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** q_ and 16 base32 characters (chalicelib/domain/ids.py new_id). */
function newQuestionId() {
  return `q_${Array.from(randomBytes(16), (b) => B32[b % 32]).join('')}`;
}

export function checkText(text) {
  const cleaned = String(text || '').trim();
  if (!cleaned || [...cleaned].length > MAX_TEXT) throw new RangeError(`1 to ${MAX_TEXT} characters`); // code points, as Python counts
  return cleaned;
}

/** One box from this device to one recipient device (nonce then ciphertext, b64url). */
export function seal(m, recipientDevice, recipientBox, fields) {
  const payload = { ...fields, sender_device: m.deviceId, recipient_device: recipientDevice };
  const nonce = randomBytes(24);
  const box = nacl().box(utf8(canonicalJson(payload)), nonce, checkBoxPublicKey(recipientBox), m.device.boxSecretKey);
  const out = new Uint8Array(24 + box.length);
  out.set(nonce);
  out.set(box, 24);
  return b64e(out);
}

/** A box sealed to this device, every bound field checked; null if it does not open as such. */
export function openBox(m, sealed, senderDevice, senderBox, fields) {
  try {
    const raw = b64d(sealed);
    const plain = nacl().box.open(raw.slice(24), raw.slice(0, 24), checkBoxPublicKey(senderBox), m.device.boxSecretKey);
    if (!plain) return null;
    const payload = JSON.parse(new TextDecoder().decode(plain));
    const expected = { ...fields, sender_device: senderDevice, recipient_device: m.deviceId };
    if (Object.entries(expected).some(([k, v]) => payload?.[k] !== v)) return null;
    return typeof payload.text === 'string' && [...payload.text].length <= MAX_TEXT ? payload : null;
  } catch {
    return null;
  }
}

/** The usable device if it is a manager's of the tribe (an admin or owner now, or an author in
 * its verified log), as this browser verifies it; else null. */
export function isManager(view, state, deviceId, memberId) {
  const usable = view?.usable(deviceId);
  if (!usable || usable.member_id !== memberId) return null;
  return ADMIN_ROLES.includes(view.orgRole(memberId, NOW) || '') || state?.members[memberId] === 'author' ? usable : null;
}

/** A follower asks: sealed to the managers' certified devices and to itself. */
export async function ask(m, channelId, text) {
  const cleaned = checkText(text);
  const roster = await m.roster(channelId, { fresh: true });
  await m.loadDirectory();
  const view = m.trust.view;
  const recipients = new Map();
  for (const d of m.directory.devices.values()) {
    const usable = isManager(view, roster.state, d.device_id, d.member_id);
    if (usable) recipients.set(usable.device_id, usable.box_public_key);
  }
  if (!recipients.size) throw new Error('no certified device of this tribe’s managers');
  recipients.set(m.deviceId, b64e(m.device.boxPublicKey));
  const questionId = newQuestionId();
  const fields = { purpose: QUESTION_PURPOSE, channel_id: channelId, question_id: questionId, text: cleaned };
  const sealed = Object.fromEntries([...recipients].map(([id, box]) => [id, seal(m, id, box, fields)]));
  await m.api.request('POST', `/channels/${channelId}/questions`, { body: { question_id: questionId, sealed } });
  return questionId;
}

/** The tribe's questions (a manager) or my own (a follower), opened here when their senders verify. */
export async function list(m, channelId) {
  const found = [];
  let cursor = null;
  do {
    const page = await m.api.get(`/channels/${channelId}/questions`, cursor ? { cursor } : undefined);
    found.push(...page.questions);
    cursor = page.cursor;
  } while (cursor);
  const roster = await m.roster(channelId, { fresh: true });
  const view = m.trust.view;
  const askers = new Map();
  for (const row of roster.listed || []) {
    if (row.device_cert?.purpose !== 'bocage/follower-cert/v2' || !found.some((q) => q.asker_device === row.device_id)) continue;
    const checked = await verifiedFollower(view, roster.state, row, channelId);
    if ('sign_public_key' in checked) askers.set(row.device_id, { box: checked.box_public_key, name: row.device_cert.display_name });
  }
  askers.set(m.deviceId, { box: b64e(m.device.boxPublicKey), name: m.device.display_name });
  return found
    .map((q) => {
      const asker = askers.get(q.asker_device);
      const bound = { purpose: QUESTION_PURPOSE, channel_id: channelId, question_id: q.question_id };
      const opened = asker && q.sealed ? openBox(m, q.sealed, q.asker_device, asker.box, bound) : null;
      let answer = null;
      if (q.answer && q.asker_device === m.deviceId) {
        const by = isManager(view, roster.state, q.answer.by_device, q.answer.by_member);
        const payload = by ? openBox(m, q.answer.sealed, by.device_id, by.box_public_key, { ...bound, purpose: ANSWER_PURPOSE }) : null;
        if (payload) answer = { text: payload.text, by_name: view.displayName(q.answer.by_member), published_message_id: payload.published_message_id ?? null };
      }
      return { ...q, text: opened?.text ?? null, asker_name: opened ? asker?.name ?? null : null, answered: Boolean(q.answer), opened_answer: answer };
    })
    .sort((a, b) => a.asked_at - b.asked_at);
}

/** A manager answers, sealed to the asker's verified device; `publish`: also posted in the tribe. */
export async function answer(m, channelId, question, text, publish) {
  const cleaned = checkText(text);
  const roster = await m.roster(channelId, { fresh: true });
  const row = (roster.listed || []).find((d) => d.device_id === question.asker_device);
  const checked = row ? await verifiedFollower(m.trust.view, roster.state, row, channelId) : null;
  if (!checked || !('sign_public_key' in checked)) throw new Error('the asker is not a follower this device could verify');
  let published = null;
  if (publish) {
    const result = await m.sendText(channelId, question.text ? `« ${question.text} »\n${cleaned}` : cleaned);
    published = result.message_id;
  }
  const fields = { purpose: ANSWER_PURPOSE, channel_id: channelId, question_id: question.question_id, text: cleaned, published_message_id: published };
  const sealed = seal(m, checked.device_id, checked.box_public_key, fields);
  await m.api.request('PUT', `/channels/${channelId}/questions/${question.question_id}/answer`, { body: { sealed, published_message_id: published } });
}
