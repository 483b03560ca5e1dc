// @ts-check
// An open channel: lays out its parts and owns what keeps them live (the timers, the messenger's
// events as app.js forwards them), all stopped by one dispose().
//
// Messages show from the device's cache first (readable offline), then a catch-up with the
// server fills any gap and moves this device's read cursor.
import { h, replace } from '../../dom.js';
import { t } from '../../i18n.js';
import { renderHead } from './channel-head.js';
import { createComposer } from './composer.js';
import { channelContext } from './context.js';
import { SHOWN_KINDS } from './history.js';
import { createMembersPanel } from './members-panel.js';
import { createMessageList } from './message-list.js';

/** @typedef {import('./context.js').App} App */
/** @typedef {import('./context.js').ChannelContext} ChannelContext */
/** @typedef {import('./context.js').StoredMessage} StoredMessage */
/** @typedef {{title: string, event(type: string, detail?: any): void, dispose(): void}} View */

const REFRESH_AFTER = 40; // ms: a burst of live messages renders once
const CATCH_UP_AFTER = 300;
// A live message that follows what the device holds needs no read; the server's read cursor for
// this device (other devices' unread counts start from it) is moved by one read within this time,
// or when the channel is left, rather than by a REST call per live message.
const SYNC_CURSOR_WITHIN = 30_000;
// Messages without a key yet: their senders share it when they learn of this device (a live
// event on their side), so look again a few times while the channel is open.
const RETRY_AFTER = [2000, 6000, 15000];
// Opened again on that schedule: no key yet, or a sender judged on a log perhaps stale (14.2).
const RETRIED_LATER = new Set(['no_key', 'pending_check', 'not_a_member']);
const DAY = 86400;

/** Named one-shot timers: setting one again replaces it; none runs, or starts, after dispose(). */
class Timers {
  /** @type {Map<string, ReturnType<typeof setTimeout>>} */
  #ids = new Map();
  #disposed = false;

  /**
   * @param {string} name
   * @param {number} ms
   * @param {() => unknown} run
   */
  set(name, ms, run) {
    clearTimeout(this.#ids.get(name));
    if (this.#disposed) return;
    this.#ids.set(name, setTimeout(() => {
      this.#ids.delete(name);
      run();
    }, ms));
  }

  /**
   * Like set(), but one already waiting keeps its time (a steady stream still runs it).
   * @param {string} name
   * @param {number} ms
   * @param {() => unknown} run
   */
  once(name, ms, run) {
    if (!this.pending(name)) this.set(name, ms, run);
  }

  /** @param {string} name */
  pending(name) {
    return this.#ids.has(name);
  }

  /** @param {string} name */
  clear(name) {
    clearTimeout(this.#ids.get(name));
    this.#ids.delete(name);
  }

  dispose() {
    this.#disposed = true;
    for (const id of this.#ids.values()) clearTimeout(id);
    this.#ids.clear();
  }
}

/**
 * @param {App} app
 * @param {HTMLElement} pane
 * @param {string} channelId
 * @param {string | null} [messageId] a message to show (a search result)
 * @returns {Promise<View>}
 */
export async function channelView(app, pane, channelId, messageId = null) {
  const m = app.messenger;
  if (!m.channel(channelId)) await m.loadChannels().catch(() => null);
  const channel = m.channel(channelId);
  if (!channel) {
    replace(pane, h('div', { class: 'placeholder' }, h('h1', null, t('channel.not_found')), h('p', null, h('a', { href: '#/' }, t('channel.back')))));
    return { title: t('channel.not_found'), event() {}, dispose() {} };
  }
  const controller = new ChannelController(channelContext(app, channel), pane);
  await controller.start();
  if (messageId) controller.list.reveal(messageId);
  return {
    title: controller.ctx.m.channelName(controller.ctx.channel()),
    event: (type, detail) => controller.event(type, detail),
    dispose: () => controller.dispose(),
  };
}

class ChannelController {
  /**
   * @param {ChannelContext} ctx
   * @param {HTMLElement} pane
   */
  constructor(ctx, pane) {
    this.ctx = ctx;
    this.timers = new Timers();
    /** @type {StoredMessage[]} sorted by seq */
    this.messages = [];
    /** @type {import('../../polls.js').Electorate | null} who may vote in the channel's polls */
    this.roster = null;
    /** @type {Map<string, number> | null} how far each member read, for "vu par N / M" */
    this.seen = null;
    /** @type {number | null} days, when the organisation keeps messages for a limited time */
    this.retention = null;
    this.head = h('header', { class: 'channel-head' });
    this.members = createMembersPanel(ctx);
    this.offlineNote = h('p', { class: 'offline-note', hidden: true, role: 'status' }, t('channel.offline'));
    this.list = createMessageList(ctx, { onReply: (id) => this.composer.replyTo(id) });
    this.composer = createComposer(ctx, (id) => this.messages.find((x) => x.message_id === id));
    this.questions = h('div', { class: 'questions-slot' });
    replace(pane, this.head, this.members.element, this.offlineNote, this.list.element, this.questions, this.composer.element);
  }

  /** Questions to the town hall (docs/protocol.md, 20): a follower asks, a tribe's managers answer. */
  async showQuestions() {
    const { m } = this.ctx;
    const channel = this.ctx.channel();
    if (channel?.kind !== 'tribe' || !(m.isFollower() || this.ctx.mayManage())) return;
    const { createQuestionsPanel } = await import('./questions.js');
    replace(this.questions, createQuestionsPanel(this.ctx).element);
  }

  async start() {
    // A follower may not ask the tribe's settings (16.3): its messages expire as stored all the same.
    const retention = this.ctx.m.isFollower() ? null : this.ctx.m.api.get(`/channels/${this.ctx.channelId}/retention`).catch(() => null);
    this.renderHead();
    this.composer.render();
    this.showQuestions().catch(() => null);
    await this.refresh(); // from the device's cache first: readable offline
    this.retention = (await retention)?.retention_days || null;
    this.renderHead();
    if (this.retention) await this.refresh(); // a shortened retention hides older messages at once
    await this.catchUp();
  }

  renderHead() {
    renderHead(this.ctx, this.head, {
      retention: this.retention,
      membersOpen: this.members.open,
      onToggleMembers: () => {
        this.members.toggle();
        this.renderHead();
        /** @type {HTMLElement | null} */ (this.head.querySelector('[aria-controls="members-panel"]'))?.focus();
      },
    });
  }

  /**
   * A messenger event (app.js forwards them to the current view).
   * @param {string} type
   * @param {any} detail
   */
  event(type, detail) {
    const { channelId } = this.ctx;
    if (type === 'message' && detail?.channel_id === channelId) this.onMessage(detail);
    else if (type === 'channels') this.onChannels();
    else if (type === 'roster' && detail === channelId) {
      if (this.members.open) this.members.render();
      this.scheduleRefresh();
    } else if (type === 'status' && detail?.online) this.scheduleCatchUp();
    else if (type === 'purged') this.scheduleRefresh();
    else if (type === 'outbox' && detail === channelId) this.scheduleRefresh();
  }

  /** @param {StoredMessage} detail */
  onMessage(detail) {
    const { app, m, nameOf } = this.ctx;
    this.scheduleRefresh();
    if (m.followsSeen(detail)) this.timers.once('sync-cursor', SYNC_CURSOR_WITHIN, () => this.catchUp());
    else this.scheduleCatchUp(); // fills the gap
    if (RETRIED_LATER.has(detail.error || '')) this.scheduleKeyRetry(0, detail);
    if (detail.sender_device === m.deviceId || !SHOWN_KINDS.has(detail.kind) || !detail.verified) return;
    const who = nameOf(detail.sender_member);
    app.announce(detail.kind === 'poll'
      ? t('live.new_poll', { name: who, question: detail.content.question })
      : t('live.new_message', { name: who, text: detail.content.text }));
  }

  onChannels() {
    const { app, m, channelId } = this.ctx;
    if (!m.channel(channelId)) {
      app.toast(t('channel.gone'), 'error');
      app.navigate('#/');
      return;
    }
    this.renderHead();
    this.composer.renderIfRoleChanged();
  }

  dispose() {
    if (this.timers.pending('sync-cursor')) this.ctx.m.catchUp(this.ctx.channelId).catch(() => null);
    this.timers.dispose();
  }

  scheduleRefresh() {
    this.timers.set('refresh', REFRESH_AFTER, () => this.refresh());
  }

  scheduleCatchUp() {
    this.timers.set('catch-up', CATCH_UP_AFTER, () => this.catchUp());
  }

  /**
   * Show the device's copy of the channel, its roster as fresh as the messenger has it, and each
   * message's sender judged again on the verified state that roster brought (14.2).
   */
  async refresh() {
    const { app, m, channelId } = this.ctx;
    const cached = await cachedMessages(app, channelId, this.retention);
    try {
      const roster = await m.roster(channelId);
      // Cut with the ends known now; on a rolled-back or forked log, the kept state, said so (8).
      this.roster = { ...m.voters(channelId, roster.state), blocked: roster.blocked };
    } catch {
      this.roster = this.roster || m.voters(channelId, undefined, cached); // offline: the kept verified state
    }
    this.messages = await m.judgeCached(cached);
    const pending = (await app.store.outbox()).filter((x) => x.channel_id === channelId);
    this.list.show(this.messages, this.roster, pending, this.seen);
  }

  /** Ask the server for what this device has not seen; "offline" when it cannot be reached. */
  async catchUp() {
    const { app, m, channelId } = this.ctx;
    this.timers.clear('sync-cursor'); // this read moves the cursor
    let offline = false;
    try {
      await m.catchUp(channelId);
      if (await m.retryUnreadable(channelId)) this.scheduleRefresh();
      if (this.ctx.channel().kind !== 'tribe' || this.ctx.mayManage()) this.seen = await m.seenBy(channelId);
    } catch (err) {
      offline = err.status === 0;
      if (err.status === 403 || err.status === 404) app.toast(app.errorText(err), 'error');
    }
    this.offlineNote.hidden = !offline;
    await this.refresh();
    this.scheduleKeyRetry();
  }

  /** @param {number} [attempt] @param {StoredMessage} [arrived] one just in, not yet listed */
  scheduleKeyRetry(attempt = 0, arrived = undefined) {
    this.timers.clear('key-retry');
    const waiting = [...this.messages, ...(arrived ? [arrived] : [])].some((x) => RETRIED_LATER.has(x.error || ''));
    if (attempt >= RETRY_AFTER.length || !waiting) return;
    this.timers.set('key-retry', RETRY_AFTER[attempt], async () => {
      try {
        if (await this.ctx.m.retryUnreadable(this.ctx.channelId)) await this.refresh();
      } catch {
        // offline: the next catch-up tries again
      }
      this.scheduleKeyRetry(attempt + 1);
    });
  }
}

/**
 * The channel's messages on this device, sorted by seq. A shortened retention holds on the
 * device at once, as the server's reads do.
 * @param {App} app
 * @param {string} channelId
 * @param {number | null} retention days
 * @returns {Promise<StoredMessage[]>}
 */
async function cachedMessages(app, channelId, retention) {
  let cached = await app.store.messages(channelId);
  if (retention) {
    const limit = retention * DAY;
    const capped = cached.filter((x) => x.stored_at && x.stored_at + limit < (x.expires_at || Infinity));
    if (capped.length) {
      await app.store.putMessages(capped.map((x) => ({ ...x, expires_at: x.stored_at + limit })));
      await app.store.purgeExpired();
      cached = await app.store.messages(channelId);
    }
  }
  return cached.sort((a, b) => a.seq - b.seq);
}
