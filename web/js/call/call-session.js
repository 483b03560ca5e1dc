// @ts-check
// One call from this device (docs/protocol.md 19): a mesh of RTCPeerConnections, one per other
// participant, signalled over the messenger's WebSocket. Offers, answers and candidates are
// sealed to the receiving device's certified box key; a signal is acted on only when it comes
// from a certified device of a member in the channel's verified membership (19.4).
import { base32Lower, CryptoError, randomBytes } from '../wire.js';
import { FRESH_SECONDS, MEDIA_SIGNALS, openCallSignal, sealCallSignal } from './sealed.js';

const ACK_TIMEOUT = 15_000;
/** Why the server ends a device's part in a call in its own name (19.4). */
const SERVER_REASONS = ['removed', 'revoked'];

/** The frame's device certified for its member in `view`, and whether it is revoked or of a removed member. */
function revokedIn(view, frame) {
  const device = view?.device(frame.from_device);
  const certified = Boolean(device) && device.member_id === frame.from_member;
  return { certified, gone: certified && !view.usable(frame.from_device) };
}

/**
 * Whether this device sees for itself what the server's notice says (19.4): the named device,
 * certified for the named member, revoked or of a removed member in its trust view (asked again
 * if not), or that member out of the channel's verified membership log, cut at the partnership
 * ends (22.7). The same rule as bocage/client/calls.py.
 */
export async function seesGone(m, frame) {
  let seen = revokedIn(m.trust.view, frame);
  if (!seen.gone) {
    await m.loadDirectory();
    seen = revokedIn(m.trust.view, frame);
  }
  if (!seen.certified) return false;
  if (seen.gone) return true;
  let roster;
  try {
    roster = await m.roster(frame.channel_id, { fresh: true });
  } catch {
    return false; // a log this device cannot read or verify shows nothing
  }
  // Judged on the membership cut at the partnership ends (22.7), as the sealed signals are.
  const members = roster.state && m.trust.cut(roster.state).members;
  return Boolean(members) && !roster.blocked && !Object.hasOwn(members, frame.from_member);
}

export function newCallId() {
  return `k_${base32Lower(randomBytes(10))}`;
}

/**
 * What a device sends, in bits per second, to keep a mesh within a phone's uplink (docs/calls.md,
 * "Limits"): the video budget is shared between the other participants (a six-person call sends
 * five streams), each stream between a floor and a ceiling; audio has its own cap.
 */
export const UPLINK_VIDEO_BPS = 2_500_000;
export const VIDEO_CEILING_BPS = 1_500_000;
export const VIDEO_FLOOR_BPS = 250_000;
export const AUDIO_BPS = 40_000;

/** The video cap per stream with `others` other participants. @param {number} others */
export function videoCap(others) {
  return Math.max(VIDEO_FLOOR_BPS, Math.min(VIDEO_CEILING_BPS, Math.floor(UPLINK_VIDEO_BPS / Math.max(1, others))));
}

/**
 * The channel's other certified devices (the effective roster: certificate keys, signed membership).
 * @param {any} m the Messenger
 * @param {string} channelId
 * @returns {Promise<Map<string, {device_id: string, member_id: string, box_public_key: string}>>}
 */
export async function certifiedDevices(m, channelId) {
  const roster = await m.roster(channelId, { fresh: true });
  return new Map(roster.devices.filter((d) => d.device_id !== m.deviceId).map((d) => [d.device_id, d]));
}

/**
 * A relayed call frame, checked: null when its sender is not a certified device of the channel
 * (or the server names another member for it), or when its sealed payload does not open.
 * A frame with `reason` is the server's notice: a leave or a hang-up only, believed only when
 * this device sees that removal or revocation itself (seesGone).
 * @returns {Promise<{frame: any, data: any, byServer: boolean} | null>}
 */
export async function verifySignal(m, frame, devices = null) {
  if (frame.reason !== undefined) {
    const ok = (frame.signal === 'leave' || frame.signal === 'hangup') && frame.sealed === undefined && SERVER_REASONS.includes(frame.reason);
    return ok && (await seesGone(m, frame)) ? { frame, data: null, byServer: true } : null;
  }
  const known = devices || (await certifiedDevices(m, frame.channel_id));
  let device = known.get(frame.from_device);
  if (!device && !devices) return null;
  if (!device) device = (await certifiedDevices(m, frame.channel_id)).get(frame.from_device);
  if (!device || device.member_id !== frame.from_member) return null;
  if (typeof frame.sealed !== 'string') return null; // every signal is sealed (19.3): the server's word alone
  let data;
  try {
    data = openCallSignal(m.keys, frame.sealed, frame.from_device, device.box_public_key, frame.channel_id, frame.call_id, frame.signal);
  } catch (err) {
    if (err instanceof CryptoError) return null;
    throw err;
  }
  if (MEDIA_SIGNALS.includes(frame.signal)) return { frame, data, byServer: false };
  // This device's own clock, not the server-corrected one: the server could set that to a replay's time.
  const fresh = Number.isInteger(data.at) && Math.abs(Math.floor(Date.now() / 1000) - data.at) <= FRESH_SECONDS;
  return fresh ? { frame, data: null, byServer: false } : null; // an old one: a replay
}

/**
 * Whether a leave or a hang-up stops the ring of `ring` on this device: only the caller's own,
 * sealed and verified, or the server's notice about the caller or this device that this device
 * sees for itself (19.4); never the server's word alone, nor another participant's leave.
 * @param {any} m the Messenger
 * @param {any} ring the ring frame being shown
 * @param {any} frame a leave or hang-up of the same call
 */
export async function stopsRing(m, ring, frame) {
  if (frame.call_id !== ring.call_id || (frame.signal !== 'leave' && frame.signal !== 'hangup')) return false;
  const checked = await verifySignal(m, frame);
  if (!checked) return false;
  return frame.from_device === ring.from_device || (checked.byServer && frame.from_device === m.deviceId);
}

export class CallSession extends EventTarget {
  /**
   * @param {any} m the Messenger
   * @param {string} channelId
   * @param {string} callId
   * @param {RTCIceServer[]} iceServers
   * @param {{relayOnly?: boolean}} [options]
   */
  constructor(m, channelId, callId, iceServers, { relayOnly = false } = {}) {
    super();
    this.m = m;
    this.channelId = channelId;
    this.callId = callId;
    /** @type {RTCConfiguration} */
    this.config = { iceServers, iceTransportPolicy: relayOnly ? 'relay' : 'all' };
    /** @type {Map<string, {pc: RTCPeerConnection, stream: MediaStream, queued: RTCIceCandidateInit[]}>} */
    this.peers = new Map();
    /** @type {MediaStream | null} */
    this.local = null;
    this.devices = new Map();
    /** @type {string[]} */
    this.participants = [];
    this.pending = new Map();
    this.ended = false;
    this.startedAt = performance.now();
    /** @type {number | null} ms from the start to the first remote video frame */
    this.firstVideoMs = null;
    /** @type {number | null} when media first came from another device (performance.now()) */
    this.connectedAt = null;
    this.isCaller = false;
    /** @type {MediaStream | null} the shared screen, sent instead of the camera while shared */
    this.screen = null;
    /** @type {Set<string>} members whose devices joined (certified senders of accept or join) */
    this.joinedMembers = new Set([m.memberId]);
  }

  async media() {
    this.local = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    return this.local;
  }

  async refreshDevices() {
    this.devices = await certifiedDevices(this.m, this.channelId);
  }

  /**
   * Send one signal; resolves with the server's call_ack, rejects with its refusal.
   * @param {string} signal
   * @param {string[] | Map<string, object>} to
   */
  async send(signal, to) {
    /** @type {Map<string, object>} */
    let payloads = to instanceof Map ? to : new Map();
    if (!(to instanceof Map)) {
      let named = [...to];
      if (!named.every((d) => this.devices.has(d))) await this.refreshDevices();
      // Leaving reaches every participant still certified: one revoked meanwhile (or named by
      // the server's ack only) must not keep the others from hearing it.
      if (signal === 'leave' || signal === 'hangup') named = named.filter((d) => this.devices.has(d));
      if (signal === 'accept' || signal === 'decline') {
        // This member's other devices are told too, so that they stop ringing (19.1).
        for (const [deviceId, d] of this.devices) if (d.member_id === this.m.memberId && !named.includes(deviceId)) named.push(deviceId);
      }
      const stamp = { at: this.m.api.now() };
      payloads = new Map(named.map((d) => [d, stamp]));
    }
    const targets = [];
    for (const [deviceId, data] of payloads) {
      const device = this.devices.get(deviceId);
      if (!device) throw new CryptoError(`not a certified device of this channel: ${deviceId}`);
      targets.push({ device_id: deviceId, sealed: sealCallSignal(this.m.keys, deviceId, device.box_public_key, this.channelId, this.callId, signal, data) });
    }
    const ref = `call-${base32Lower(randomBytes(8))}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(ref);
        reject(new Error('no answer from the server'));
      }, ACK_TIMEOUT);
      this.pending.set(ref, { resolve, reject, timer });
      this.m.sendFrame({ action: 'call', ref, channel_id: this.channelId, call_id: this.callId, signal, to: targets });
    });
  }

  /** A call_ack or an error frame for one of this session's signals. */
  settle(frame) {
    const waiting = this.pending.get(frame.ref);
    if (!waiting) return;
    this.pending.delete(frame.ref);
    clearTimeout(waiting.timer);
    if (frame.type === 'call_ack') {
      if (!this.ended) this.participants = frame.participants;
      waiting.resolve(frame);
    } else {
      waiting.reject(Object.assign(new Error(frame.message || frame.error), { status: frame.status, code: frame.error, detail: frame.message }));
    }
  }

  /** A relayed frame of this call: checked, then acted on. */
  async receive(frame) {
    if (this.ended) return;
    if (!frame.reason && !this.devices.has(frame.from_device)) await this.refreshDevices();
    const checked = await verifySignal(this.m, frame, this.devices);
    if (!checked) {
      this.dispatchEvent(new CustomEvent('refused', { detail: frame }));
      return;
    }
    const from = frame.from_device;
    const data = checked.data;
    switch (frame.signal) {
      case 'accept':
      case 'join':
        // Not yet counted as joined: a member joined once their device's offer or answer opens
        // and the media flow (below); an accept alone could be an old one replayed in this call.
        if (!this.participants.includes(from)) this.participants = [...this.participants, from];
        await this.offerTo(from);
        break;
      case 'offer': {
        this.joinedMembers.add(frame.from_member); // sealed by that certified device: it is in the call
        const peer = this.peer(from);
        await peer.pc.setRemoteDescription(/** @type {RTCSessionDescriptionInit} */ (data));
        await this.flush(peer);
        const answer = await peer.pc.createAnswer();
        await peer.pc.setLocalDescription(answer);
        await this.send('answer', new Map([[from, { type: answer.type, sdp: answer.sdp }]]));
        await this.capBitrates();
        break;
      }
      case 'answer': {
        const peer = this.peers.get(from);
        if (peer) {
          this.joinedMembers.add(frame.from_member); // sealed by that certified device
          await peer.pc.setRemoteDescription(/** @type {RTCSessionDescriptionInit} */ (data));
          await this.flush(peer);
        }
        break;
      }
      case 'candidate': {
        const peer = this.peer(from);
        if (peer.pc.remoteDescription) await peer.pc.addIceCandidate(data);
        else peer.queued.push(data);
        break;
      }
      case 'decline':
        this.dispatchEvent(new CustomEvent('declined', { detail: frame }));
        break;
      case 'leave':
        this.drop(from);
        if (!this.peers.size && this.participants.length <= 1) await this.leave(); // the last one: the call ends
        break;
      case 'hangup':
        this.end(checked.byServer ? frame.reason : 'hangup');
        break;
      default:
        break;
    }
  }

  async flush(peer) {
    for (const candidate of peer.queued.splice(0)) await peer.pc.addIceCandidate(candidate);
  }

  /** The connection to one other device, made on first use. */
  peer(deviceId) {
    const known = this.peers.get(deviceId);
    if (known) return known;
    const pc = new RTCPeerConnection(this.config);
    const entry = { pc, stream: new MediaStream(), queued: [] };
    this.peers.set(deviceId, entry);
    for (const track of this.local?.getTracks() || []) pc.addTrack(this.outgoing(track), /** @type {MediaStream} */ (this.local));
    pc.onicecandidate = (event) => {
      if (event.candidate && !this.ended) this.send('candidate', new Map([[deviceId, event.candidate.toJSON()]])).catch(() => null);
    };
    pc.ontrack = (event) => {
      entry.stream.addTrack(event.track);
      if (this.connectedAt === null) this.connectedAt = performance.now();
      this.dispatchEvent(new CustomEvent('streams'));
    };
    pc.onconnectionstatechange = () => this.dispatchEvent(new CustomEvent('state', { detail: pc.connectionState }));
    return entry;
  }

  async offerTo(deviceId) {
    const peer = this.peer(deviceId);
    const offer = await peer.pc.createOffer();
    await peer.pc.setLocalDescription(offer);
    await this.send('offer', new Map([[deviceId, { type: offer.type, sdp: offer.sdp }]]));
    await this.capBitrates();
  }

  /** Each stream this device sends within its share of the uplink (again whenever peers change). */
  async capBitrates() {
    const video = videoCap(this.peers.size);
    const caps = [];
    for (const { pc } of this.peers.values()) {
      for (const sender of pc.getSenders()) {
        if (!sender.track) continue;
        const parameters = sender.getParameters();
        if (!parameters.encodings?.length) continue; // not negotiated yet: capped after it is
        for (const encoding of parameters.encodings) encoding.maxBitrate = sender.track.kind === 'video' ? video : AUDIO_BPS;
        caps.push(sender.setParameters(parameters).catch(() => null));
      }
    }
    await Promise.all(caps);
  }

  drop(deviceId) {
    const peer = this.peers.get(deviceId);
    if (peer) peer.pc.close();
    this.peers.delete(deviceId);
    this.participants = this.participants.filter((d) => d !== deviceId);
    this.dispatchEvent(new CustomEvent('streams'));
    if (!this.ended) this.capBitrates().catch(() => null); // one stream fewer: a larger share each
  }

  /** Mute or unmute the microphone, turn the camera off or on: returns the new state. */
  toggle(kind) {
    const tracks = kind === 'audio' ? this.local?.getAudioTracks() : this.local?.getVideoTracks();
    const on = !(tracks || []).every((t) => !t.enabled);
    for (const track of tracks || []) track.enabled = !on;
    return !on;
  }

  /** What is sent for a local track: the shared screen instead of the camera while it is shared. */
  outgoing(track) {
    return (track.kind === 'video' && this.screen?.getVideoTracks()[0]) || track;
  }

  /**
   * Share the screen: its track replaces the camera's in every peer connection (replaceTrack, no
   * renegotiation, so the sealed SDP already exchanged stays valid). Stopping it, here or from
   * the browser's own "stop sharing", puts the camera back. Throws when the capture is refused.
   */
  async shareScreen() {
    if (this.screen || this.ended) return;
    const screen = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    const track = screen.getVideoTracks()[0];
    if (this.ended) {
      track.stop();
      return;
    }
    this.screen = screen;
    track.addEventListener('ended', () => this.stopSharing().catch(() => null));
    await this.sendVideo(track);
    this.dispatchEvent(new CustomEvent('sharing', { detail: true }));
  }

  async stopSharing() {
    const screen = this.screen;
    if (!screen) return;
    this.screen = null;
    for (const track of screen.getTracks()) track.stop();
    const camera = this.local?.getVideoTracks()[0] || null;
    if (!this.ended) await this.sendVideo(camera);
    this.dispatchEvent(new CustomEvent('sharing', { detail: false }));
  }

  /** Send this video track on every connection, in place of the one sent now. */
  async sendVideo(track) {
    const swaps = [];
    for (const { pc } of this.peers.values()) {
      for (const transceiver of pc.getTransceivers()) {
        if (transceiver.sender.track?.kind === 'video' || transceiver.receiver.track.kind === 'video') {
          if (transceiver.sender.track !== track) swaps.push(transceiver.sender.replaceTrack(track));
        }
      }
    }
    await Promise.all(swaps);
  }

  /** Leave: the others are told; the call ends for them when nobody is left. */
  /** @param {string} [reason] why, for the view: 'left', or 'no_answer' when a ring ran out */
  async leave(reason = 'left') {
    const others = this.participants.filter((d) => d !== this.m.deviceId);
    if (!this.ended) await this.send('leave', others).catch(() => null);
    this.end(reason);
  }

  end(reason) {
    if (this.ended) return;
    this.ended = true;
    for (const deviceId of [...this.peers.keys()]) this.drop(deviceId);
    for (const track of [...(this.local?.getTracks() || []), ...(this.screen?.getTracks() || [])]) track.stop();
    this.screen = null;
    this.dispatchEvent(new CustomEvent('ended', { detail: reason }));
  }

  /** Bytes received so far, by kind, over every peer (getStats' inbound-rtp). */
  async received() {
    const total = { audio: 0, video: 0, relayed: false };
    for (const { pc } of this.peers.values()) {
      const stats = await pc.getStats();
      stats.forEach((s) => {
        if (s.type === 'inbound-rtp' && (s.kind === 'audio' || s.kind === 'video')) total[s.kind] += s.bytesReceived || 0;
        if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') {
          const local = stats.get(s.localCandidateId);
          if (local?.candidateType === 'relay') total.relayed = true;
        }
      });
    }
    return total;
  }
}
