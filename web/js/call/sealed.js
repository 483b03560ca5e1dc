// @ts-check
// Call signals sealed to one device (docs/protocol.md 19.3): every signal, boxed from this
// device's box key to the receiving device's certified one and bound to the channel, the call,
// the signal and both devices; an offer, an answer or an ICE candidate carries its media
// parameters, the others the time they were made. Loaded with the call code, on first use.
import { b64d, b64e, canonicalJson, checkBoxPublicKey, concat, CryptoError, fromUtf8, nacl, randomBytes, utf8 } from '../wire.js';

export const CALL_SIGNAL_PURPOSE = 'bocage/call-signal/v1';
/** The signals that carry media parameters (between participants only). */
export const MEDIA_SIGNALS = ['offer', 'answer', 'candidate'];
/** How far from this device's clock the date sealed in any other signal may be: older is a replay. */
export const FRESH_SECONDS = 300;

function binding(channelId, callId, signal, senderDevice, recipientDevice) {
  return {
    purpose: CALL_SIGNAL_PURPOSE,
    channel_id: channelId,
    call_id: callId,
    signal,
    sender_device: senderDevice,
    recipient_device: recipientDevice,
  };
}

/**
 * @param {{deviceId: string, boxSecretKey: Uint8Array}} sender
 * @param {string} recipientDevice
 * @param {string} recipientBoxPublicKey the certificate's box key (b64url)
 * @param {string} channelId
 * @param {string} callId
 * @param {string} signal
 * @param {object} data
 * @param {Uint8Array} [nonce] test vectors only
 * @returns {string}
 */
export function sealCallSignal(sender, recipientDevice, recipientBoxPublicKey, channelId, callId, signal, data, nonce) {
  const key = checkBoxPublicKey(recipientBoxPublicKey);
  const payload = utf8(canonicalJson({ ...binding(channelId, callId, signal, sender.deviceId, recipientDevice), data }));
  const n = nonce || randomBytes(nacl().box.nonceLength);
  return b64e(concat(n, nacl().box(payload, n, key, sender.boxSecretKey)));
}

/**
 * The `data` of a sealed signal once every bound field is checked; CryptoError otherwise.
 * @param {{deviceId: string, boxSecretKey: Uint8Array}} recipient
 * @returns {Record<string, any>}
 */
export function openCallSignal(recipient, sealed, senderDevice, senderBoxPublicKey, channelId, callId, signal) {
  let payload;
  try {
    const raw = b64d(sealed);
    const n = nacl().box.nonceLength;
    const opened = nacl().box.open(raw.slice(n), raw.slice(0, n), checkBoxPublicKey(senderBoxPublicKey), recipient.boxSecretKey);
    if (!opened) throw new CryptoError('call signal does not open');
    payload = JSON.parse(fromUtf8(opened));
  } catch {
    throw new CryptoError('call signal does not open');
  }
  const expected = binding(channelId, callId, signal, senderDevice, recipient.deviceId);
  if (!payload || typeof payload !== 'object' || Object.entries(expected).some(([k, v]) => payload[k] !== v)) {
    throw new CryptoError('call signal is bound to another channel, call, signal or device');
  }
  if (!payload.data || typeof payload.data !== 'object' || Array.isArray(payload.data)) throw new CryptoError('malformed call signal');
  return payload.data;
}
