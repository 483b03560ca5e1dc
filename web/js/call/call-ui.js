// @ts-check
// Calls in the web app, loaded on first use: the call button's start, ringing with answer and
// decline, and the call view (the others' video, this device's, mute, camera off, hang up).
import { h, replace } from '../dom.js';
import { CallSession, certifiedDevices, newCallId, stopsRing, verifySignal } from './call-session.js';
import { ct, refusal } from './strings.js';

/** @type {CallSession | null} */
let current = null;
/** @type {{frame: any, el: HTMLElement} | null} */
let ringing = null;

/**
 * How long a ring lasts: the caller hangs up unanswered after it (the call's summary then says
 * "sans réponse"), and a callee's ring stops a little later even if that hang-up never came.
 * Tests shorten it (localStorage 'bocage.calls.ring_ms').
 */
const ringMs = () => Number(localStorage.getItem('bocage.calls.ring_ms')) || 45_000;
const RING_GRACE_MS = 5_000;

/** Diagnostics and tests: force media through the TURN relay (localStorage, this device only). */
const relayOnly = () => localStorage.getItem('bocage.calls.relay_only') === '1';

function stylesheet() {
  if (document.getElementById('call-css')) return;
  document.head.append(h('link', { id: 'call-css', rel: 'stylesheet', href: 'call.css' }));
}

/** The messenger pushed a call frame: an answer to one of ours, a ring, or a signal of the call. */
export async function onCallFrame(app, frame) {
  if (frame.type === 'call_ack' || frame.type === 'error') {
    current?.settle(frame);
    return;
  }
  if (frame.type !== 'call') return;
  if (current && !current.ended && current.callId === frame.call_id) {
    await current.receive(frame);
    return;
  }
  if (ringing && ringing.frame.call_id === frame.call_id && answeredHere(app, frame)) {
    // Another device of this member answered or declined (19.1): it stops ringing here, nothing
    // more, so a forged one (19.4) costs a missed ring, never a connection.
    const checked = await verifySignal(app.messenger, frame);
    if (!checked || ringing?.frame.call_id !== frame.call_id) return;
    stopRinging();
    app.toast(ct(frame.signal === 'accept' ? 'call.answered_elsewhere' : 'call.declined_elsewhere'));
    return;
  }
  if (ringing && ringing.frame.call_id === frame.call_id && (frame.signal === 'hangup' || frame.signal === 'leave')) {
    const stops = await stopsRing(app.messenger, ringing.frame, frame);
    if (stops && ringing?.frame.call_id === frame.call_id) stopRinging();
    return;
  }
  if (frame.signal !== 'ring' || (current && !current.ended) || ringing) return;
  const checked = await verifySignal(app.messenger, frame);
  if (!checked) return; // not a certified device of the channel: never rings (19.4)
  showRing(app, frame);
}

/** An accept or a decline from another device of this member. */
function answeredHere(app, frame) {
  const m = app.messenger;
  return (frame.signal === 'accept' || frame.signal === 'decline') && frame.from_member === m.memberId && frame.from_device !== m.deviceId;
}

/** ICE servers for a call in this channel; throws the route's refusal (403 with its reason). */
async function iceServers(app, channelId) {
  const answer = await app.messenger.api.get(`/channels/${channelId}/calls/ice`);
  return answer.ice_servers;
}

/** The call button: ring the channel's other certified devices. */
export async function startCall(app, channelId) {
  if (current && !current.ended) return;
  const m = app.messenger;
  let servers;
  try {
    servers = await iceServers(app, channelId);
  } catch (err) {
    app.toast(ct('call.unavailable', { reason: refusal(app, err) }), 'error');
    return;
  }
  const session = new CallSession(m, channelId, newCallId(), servers, { relayOnly: relayOnly() });
  session.isCaller = true;
  const view = openView(app, session);
  if (!(await withMedia(app, session, view))) return;
  await session.refreshDevices();
  const targets = [...session.devices.keys()];
  try {
    await session.send('ring', targets);
    status(view, ct('call.calling'));
    setTimeout(() => {
      if (session.ended || session.joinedMembers.size > 1) return;
      session.leave('no_answer').catch(() => null);
    }, ringMs());
  } catch (err) {
    session.end('refused');
    app.toast(refusal(app, err), 'error');
  }
}

async function withMedia(app, session, view) {
  try {
    await session.media();
    showLocal(view, session);
    return true;
  } catch (err) {
    const message = h('p', { class: 'call-error', role: 'alert' }, ct('call.media_refused'), ' ', h('small', null, String(err?.name || '')));
    replace(view.querySelector('.call-status'), message);
    session.end('media');
    app.announce(ct('call.media_refused'));
    return false;
  }
}

function showRing(app, frame) {
  const name = app.messenger.memberName(frame.from_member) || '?';
  const el = h('div', { class: 'call-ring', role: 'alertdialog', 'aria-label': ct('call.incoming', { name }) },
    h('p', null, ct('call.incoming', { name })),
    h('button', { type: 'button', class: 'primary', onClick: () => answer(app, frame) }, ct('call.accept')),
    h('button', { type: 'button', class: 'danger', onClick: () => decline(app, frame) }, ct('call.decline')),
  );
  stylesheet();
  document.body.append(el);
  ringing = { frame, el };
  app.announce(ct('call.incoming', { name }));
  setTimeout(() => {
    if (ringing?.el !== el) return; // answered, declined or hung up meanwhile
    stopRinging();
    app.toast(ct('call.missed_from', { name }));
  }, ringMs() + RING_GRACE_MS);
}

function stopRinging() {
  ringing?.el.remove();
  ringing = null;
}

async function decline(app, frame) {
  stopRinging();
  const session = new CallSession(app.messenger, frame.channel_id, frame.call_id, []);
  await session.send('decline', [frame.from_device]).catch(() => null);
}

async function answer(app, frame) {
  stopRinging();
  let servers;
  try {
    servers = await iceServers(app, frame.channel_id);
  } catch (err) {
    app.toast(ct('call.unavailable', { reason: refusal(app, err) }), 'error');
    return;
  }
  const session = new CallSession(app.messenger, frame.channel_id, frame.call_id, servers, { relayOnly: relayOnly() });
  const view = openView(app, session);
  if (!(await withMedia(app, session, view))) return;
  await session.refreshDevices();
  try {
    const ack = await session.send('accept', [frame.from_device]);
    const others = ack.participants.filter((d) => d !== app.messenger.deviceId && d !== frame.from_device);
    if (others.length) await session.send('join', others); // a call already under way: each of them offers
    status(view, ct('call.connecting'));
  } catch (err) {
    session.end('refused');
    app.toast(refusal(app, err), 'error');
  }
}

/** "Partager l'écran" / "Arrêter le partage"; this device's preview shows what it sends. */
function shareButton(app, session, viewOf) {
  const button = h('button', { type: 'button', class: 'call-share', 'aria-pressed': 'false' }, ct('call.share'));
  button.onclick = async () => {
    try {
      await (session.screen ? session.stopSharing() : session.shareScreen());
    } catch (err) {
      if (err?.name !== 'NotAllowedError' && err?.name !== 'AbortError') throw err;
      app.toast(ct('call.share_refused'));
    }
  };
  session.addEventListener('sharing', (e) => {
    const on = /** @type {CustomEvent} */ (e).detail;
    button.setAttribute('aria-pressed', on ? 'true' : 'false');
    button.textContent = ct(on ? 'call.share_stop' : 'call.share');
    const preview = /** @type {HTMLVideoElement} */ (viewOf().querySelector('video.local'));
    preview.srcObject = on ? session.screen : session.local;
  });
  return button;
}

function status(view, text) {
  replace(view.querySelector('.call-status'), text);
}

function showLocal(view, session) {
  const video = /** @type {HTMLVideoElement} */ (view.querySelector('video.local'));
  video.srcObject = session.local;
}

function openView(app, session) {
  stylesheet();
  current = session;
  const remote = h('div', { class: 'call-remote' });
  const toggle = (kind, offKey, onKey) => {
    const button = h('button', { type: 'button', 'aria-pressed': 'false' }, ct(offKey));
    button.onclick = () => {
      const off = !session.toggle(kind);
      button.setAttribute('aria-pressed', off ? 'true' : 'false');
      button.textContent = ct(off ? onKey : offKey);
    };
    return button;
  };
  const view = h('section', { class: 'call-view', role: 'dialog', 'aria-label': ct('call.title') },
    h('p', { class: 'call-status', role: 'status' }, ct('call.starting')),
    remote,
    h('video', { class: 'local', autoplay: true, playsinline: true, muted: true }),
    h('div', { class: 'call-controls' },
      toggle('audio', 'call.mute', 'call.unmute'),
      toggle('video', 'call.camera_off', 'call.camera_on'),
      navigator.mediaDevices?.getDisplayMedia ? shareButton(app, session, () => view) : null,
      h('button', { type: 'button', class: 'danger', onClick: () => (session.ended ? view.remove() : session.leave()) }, ct('call.leave')),
    ),
  );
  const local = /** @type {HTMLVideoElement} */ (view.querySelector('video.local'));
  local.muted = true;
  session.addEventListener('streams', () => {
    const videos = [...session.peers.entries()].map(([deviceId, peer]) => {
      const video = /** @type {HTMLVideoElement} */ (h('video', { class: 'remote', autoplay: true, playsinline: true, 'data-device': deviceId }));
      video.srcObject = peer.stream;
      video.addEventListener('loadeddata', () => {
        if (session.firstVideoMs === null && peer.stream.getVideoTracks().length) session.firstVideoMs = performance.now() - session.startedAt;
      }, { once: true });
      return video;
    });
    replace(remote, videos);
    if (videos.length) status(view, ct('call.connected'));
  });
  session.addEventListener('declined', (e) => {
    const name = app.messenger.memberName(/** @type {CustomEvent} */ (e).detail.from_member) || '?';
    app.toast(ct('call.declined', { name }));
  });
  session.addEventListener('ended', (e) => {
    if (current === session) current = null;
    if (/** @type {CustomEvent} */ (e).detail === 'media') return; // the view stays, saying why
    view.remove();
    app.toast(/** @type {CustomEvent} */ (e).detail === 'no_answer' ? ct('call.no_answer') : ct('call.ended'));
    if (session.isCaller) postSummary(app, session).catch((err) => app.toast(refusal(app, err), 'error'));
  });
  document.body.append(view);
  // Diagnostics for the browser tests: the current call (its getStats and timings).
  /** @type {any} */ (window).bocageCall = session;
  return view;
}

/**
 * The caller's device writes the call in the channel, sealed like any message: when, how long,
 * who joined (the members whose certified devices answered). The server sees one more message.
 */
async function postSummary(app, session) {
  const m = app.messenger;
  const seconds = session.connectedAt === null ? 0 : Math.round((performance.now() - session.connectedAt) / 1000);
  const joined = [...session.joinedMembers];
  const names = joined.map((id) => m.memberName(id) || '?').join(', ');
  const duration = seconds >= 60 ? `${Math.floor(seconds / 60)} min ${String(seconds % 60).padStart(2, '0')} s` : `${seconds} s`;
  const text = joined.length > 1 ? ct('call.summary', { duration, names }) : ct('call.missed');
  const call = { call_id: session.callId, duration_s: seconds, joined };
  await m.send(session.channelId, { type: 'text', text, call });
}

export { certifiedDevices };
