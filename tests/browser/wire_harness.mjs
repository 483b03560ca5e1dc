// Runs the web app's wire code (web/js/wire.js, ratchet.js, polls.js) under node for
// test_wire_compat.py: reads a JSON array of commands on stdin, writes a JSON array of results.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const require = createRequire(import.meta.url);
globalThis.nacl = require('tweetnacl');
const wire = await import('../../web/js/wire.js');
const polls = await import('../../web/js/polls.js');
const ratchet = await import('../../web/js/ratchet.js');
const edits = await import('../../web/js/edits.js');
const followers = await import('../../web/js/followers.js');
const questions = await import('../../web/js/questions.js');
const calls = await import('../../web/js/call/sealed.js');

const d = wire.b64d;
const e = wire.b64e;

function device(spec) {
  const keys = wire.deviceKeysFromSeeds(d(spec.sign_seed), d(spec.box_secret));
  return { ...keys, deviceId: spec.device_id };
}

const commands = {
  async latest_edits({ messages }) {
    return Object.fromEntries(edits.latestEdits(messages));
  },
  async i18n() {
    const out = {};
    for (const lang of ['fr', 'en']) {
      const dict = (await import(`../../web/js/i18n/${lang}.js`)).default;
      out[lang] = Object.fromEntries(Object.entries(dict).map(([k, v]) => [k, typeof v === 'object' ? Object.keys(v).sort() : 'text']));
    }
    return out;
  },
  async verify_call_signal({ recipient, devices, frame, now }) {
    // The web client's acceptance rule (protocol 19.4), with the effective roster it would hold.
    const session = await import('../../web/js/call/call-session.js');
    const keys = device(recipient);
    const m = { keys, deviceId: keys.deviceId, roster: async () => ({ devices }), api: { now: () => now }, trust: { view: null }, loadDirectory: async () => {} };
    const checked = await session.verifySignal(m, frame);
    return checked ? { data: checked.data, by_server: checked.byServer } : null;
  },
  async stops_ring({ recipient, devices, ring, frame, now }) {
    // Whether the web client stops a ring on this leave or hang-up (19.4).
    const session = await import('../../web/js/call/call-session.js');
    const keys = device(recipient);
    const m = { keys, deviceId: keys.deviceId, roster: async () => ({ devices }), api: { now: () => now }, trust: { view: null }, loadDirectory: async () => {} };
    return session.stopsRing(m, ring, frame);
  },
  async call_strings() {
    const { STRINGS } = await import('../../web/js/call/strings.js');
    return Object.fromEntries(Object.entries(STRINGS).map(([lang, dict]) => [lang, Object.keys(dict).sort()]));
  },
  async canonical({ value, ascii }) {
    return wire.canonicalJson(value, { ascii });
  },
  async digest({ method, path, query, body }) {
    return wire.requestDigest(method, path, query, d(body));
  },
  async token({ sign_seed, subject, method, path, query, body, now, nonce }) {
    const keys = wire.deviceKeysFromSeeds(d(sign_seed), new Uint8Array(32));
    return wire.signToken(keys.signSecretKey, subject, method, path, query, d(body), now, { nonce });
  },
  async device_id({ sign_public_key }) {
    return wire.deviceIdFor(d(sign_public_key));
  },
  async public_keys({ sign_seed, box_secret }) {
    const keys = wire.deviceKeysFromSeeds(d(sign_seed), d(box_secret));
    return { sign_public_key: e(keys.signPublicKey), box_public_key: e(keys.boxPublicKey) };
  },
  async proof({ code, sign_seed, box_public_key }) {
    const keys = wire.deviceKeysFromSeeds(d(sign_seed), new Uint8Array(32));
    const message = await wire.activationProofMessage(code, box_public_key);
    return { message: e(message), signature: e(wire.nacl().sign.detached(message, keys.signSecretKey)) };
  },
  async parse_activation({ text }) {
    return wire.parseActivation(text);
  },
  async signing_bytes({ envelope }) {
    return e(wire.envelopeSigningBytes(envelope));
  },
  async seal_message({ sender, key, fields }) {
    return wire.sealMessage(device(sender), d(key), {
      channelId: fields.channel_id,
      epoch: fields.epoch,
      index: fields.index,
      messageId: fields.message_id,
      content: fields.content,
      kind: fields.kind,
      sentAtMs: fields.sent_at,
      target: fields.target ?? null,
    });
  },
  async open_message({ envelope, key, sign_public_key }) {
    try {
      return { content: await wire.openMessage(envelope, d(key), sign_public_key) };
    } catch (err) {
      return { error: err.constructor.name };
    }
  },
  async seal_sender_key({ sender, recipient_device, recipient_box_public_key, channel_id, epoch, chain_key, index }) {
    try {
      return wire.sealSenderKey(device(sender), recipient_device, recipient_box_public_key, channel_id, epoch, d(chain_key), index);
    } catch (err) {
      return { error: err.constructor.name, message: err.message };
    }
  },
  async open_sender_key({ recipient, sealed, sender_box_public_key, channel_id }) {
    try {
      const { chainKey, index } = wire.openSenderKey(device(recipient), sealed, sender_box_public_key, channel_id);
      return { chain_key: e(chainKey), index };
    } catch (err) {
      return { error: err.constructor.name };
    }
  },
  async seal_call_signal({ sender, recipient_device, recipient_box_public_key, channel_id, call_id, signal, data, nonce }) {
    return calls.sealCallSignal(device(sender), recipient_device, recipient_box_public_key, channel_id, call_id, signal, data, nonce ? d(nonce) : undefined);
  },
  async open_call_signal({ recipient, sealed, sender_device, sender_box_public_key, channel_id, call_id, signal }) {
    try {
      return { data: calls.openCallSignal(device(recipient), sealed, sender_device, sender_box_public_key, channel_id, call_id, signal) };
    } catch (err) {
      return { error: err.constructor.name };
    }
  },
  async is_small_order({ keys }) {
    return keys.map((k) => wire.isSmallOrder(d(k)));
  },
  async chain({ chain_key, steps }) {
    const keys = [];
    let chain = d(chain_key);
    for (let i = 0; i < steps; i += 1) {
      keys.push(e(await ratchet.messageKey(chain)));
      chain = await ratchet.nextChain(chain);
    }
    return { message_keys: keys, chain_key: e(chain) };
  },
  // The web messenger's sending path: its ring at a given chain state, nextKey then sealMessage.
  async history_index({ channel_id, days, now, messages, at }) {
    // Which index a new follower would be sealed at (section 23), after these own messages
    // ({expires_at}) sent at `now`, asked at `at`: the web client's snapshot rule.
    const ring = ratchet.emptyRing();
    ratchet.setWindow(ring, channel_id, days, now, now);
    for (const [i, m] of messages.entries()) {
      const { index } = await ratchet.nextKey(ring, channel_id, 0, `m${i}`, now);
      ratchet.confirm(ring, channel_id, 0, index, i + 1, m.expires_at);
    }
    return ratchet.historyState(ring, channel_id, 0, at).index;
  },
  // The window a ring keeps after these verified choices ({days, issued_at, now}; days null:
  // asked, nothing newer valid), starting from `kept` (a window saved before): section 23.
  async history_window({ channel_id, kept, steps }) {
    const ring = ratchet.emptyRing();
    if (kept) ring.windows = { [channel_id]: { ...kept } };
    for (const { days, issued_at, now } of steps) ratchet.setWindow(ring, channel_id, days, issued_at, now);
    const { days, issued_at } = ratchet.historyWindow(ring, channel_id);
    return { days, issued_at };
  },
  async ratchet_send({ sender, chain_key, index, channel_id, epoch, messages, now }) {
    const ring = ratchet.emptyRing();
    ring.chains[`${channel_id}|${epoch}|`] = { chain_key: d(chain_key), index, kept: {}, retired_until: null };
    const out = [];
    for (const { content, kind = 'message', target = null } of messages) {
      const messageId = wire.newMessageId();
      const next = await ratchet.nextKey(ring, channel_id, epoch, messageId, now);
      out.push(wire.sealMessage(device(sender), next.key, {
        channelId: channel_id, epoch, index: next.index, messageId, content, kind, target, sentAtMs: now * 1000,
      }));
    }
    return out;
  },
  // The web messenger's reading path: the sealed state opened into a ring, then each stored
  // message through openWith; optionally forget, and the ring as IndexedDB would keep it.
  async ratchet_open({ recipient, sealed, sender_box_public_key, sender_sign_public_key, channel_id, messages, forget_at, epochs }) {
    const ring = ratchet.emptyRing();
    const me = device(recipient);
    for (const entry of sealed) {
      const { chainKey, index } = wire.openSenderKey(me, entry, sender_box_public_key, channel_id);
      ratchet.addReceived(ring, channel_id, entry.epoch, entry.sender_device, chainKey, index);
    }
    const results = [];
    for (const m of messages) {
      try {
        const meta = { seq: m.seq, messageId: m.message_id, expiresAt: m.expires_at };
        const content = await ratchet.openWith(ring, m.channel_id, m.epoch, m.sender_device, m.index, meta,
          (key) => wire.openMessage(m, key, sender_sign_public_key));
        results.push({ content });
      } catch (err) {
        results.push({ error: err.constructor.name, message: err.message });
      }
    }
    if (forget_at !== undefined) ratchet.forget(ring, forget_at, epochs || {});
    const stored = structuredClone(ring);
    const chains = Object.entries(stored.chains).map(([slot, c]) => ({
      slot,
      chain_key: c.chain_key ? e(c.chain_key) : null,
      index: c.index,
      keys: Object.entries(c.kept).map(([i, k]) => ({ index: Number(i), key: e(k.key), expires_at: k.expires_at })),
    }));
    return { results, chains };
  },
  // bench/ratchet.py: the web client's opening path (openWith + openMessage, no IndexedDB) over
  // stored messages, timed in node: `cold` from the sealed state (every key derived), `warm` the
  // same messages again (keys kept), `reverse` a fresh ring reading the newest first.
  async bench_open({ recipient, sealed, sender_box_public_key, sender_sign_public_key, channel_id, messages }) {
    const me = device(recipient);
    const fresh = () => {
      const ring = ratchet.emptyRing();
      const { chainKey, index } = wire.openSenderKey(me, sealed, sender_box_public_key, channel_id);
      ratchet.addReceived(ring, channel_id, sealed.epoch, sealed.sender_device, chainKey, index);
      return ring;
    };
    const readAll = async (ring, list) => {
      const started = performance.now();
      for (const m of list) {
        const meta = { seq: m.seq, messageId: m.message_id, expiresAt: m.expires_at };
        await ratchet.openWith(ring, m.channel_id, m.epoch, m.sender_device, m.index, meta,
          (key) => wire.openMessage(m, key, sender_sign_public_key));
      }
      return performance.now() - started;
    };
    const ring = fresh();
    const cold = await readAll(ring, messages);
    const warm = await readAll(ring, messages);
    const reverse = await readAll(fresh(), [...messages].reverse());
    return { cold_ms: cold, warm_ms: warm, reverse_ms: reverse };
  },
  async verify({ message, signature, public_key }) {
    return wire.verifySignature(d(message), d(signature), d(public_key));
  },
  async pad({ data }) {
    return e(wire.pad(d(data)));
  },
  async follower_cert({ link, sign_seed, box_secret, display_name, now }) {
    const keys = wire.deviceKeysFromSeeds(d(sign_seed), d(box_secret));
    const cert = await followers.followerCertificate(link, keys.signPublicKey, keys.boxPublicKey, display_name, now);
    return { cert, proof_message: e(followers.joinProofMessage(link.link, e(keys.boxPublicKey))) };
  },
  async seal_box({ sender, recipient_device, recipient_box, fields }) {
    const keys = device(sender);
    const m = { deviceId: keys.deviceId, device: { boxSecretKey: keys.boxSecretKey } };
    return questions.seal(m, recipient_device, recipient_box, fields);
  },
  async open_box({ recipient, sealed, sender_device, sender_box, fields }) {
    const keys = device(recipient);
    const m = { deviceId: keys.deviceId, device: { boxSecretKey: keys.boxSecretKey } };
    return questions.openBox(m, sealed, sender_device, sender_box, fields);
  },
  async tally({ messages, poll_id, members, now, departed = {} }) {
    const result = polls.tally(messages, poll_id, new Set(members), now, departed);
    delete result.votes_by; // the browser's extra (who voted what, for "your vote")
    return result;
  },
  async new_poll({ question, options, multiple, closes_at, show_voters = false }) {
    try {
      return polls.newPoll(question, options, { multiple, closesAt: closes_at, showVoters: show_voters });
    } catch (err) {
      return { error: err.message };
    }
  },
};

const input = JSON.parse(readFileSync(0, 'utf8'));
const output = [];
for (const { op, ...args } of input) {
  output.push(await commands[op](args));
}
process.stdout.write(JSON.stringify(output));
