// @ts-check
// What every part of an open channel shares: the app, the channel's id and freshest record, and
// the lookups (names, rights) each part would otherwise compute its own way.
import { t } from '../../i18n.js';

/** @typedef {typeof import('../../app.js').app} App */
/** @typedef {import('../../messenger.js').Messenger} Messenger */

/**
 * A channel as the messenger lists it (GET /channels).
 * @typedef {object} Channel
 * @property {string} channel_id
 * @property {string} name
 * @property {string} kind 'group', 'tribe' or 'direct'
 * @property {string[] | null} [direct_members] a direct conversation's two members
 * @property {string} [my_role] 'author' or 'member'
 * @property {number} [latest_seq]
 * @property {number} [unread]
 */

/**
 * A message as the device keeps it (db.js): opened and verified, or not readable and why.
 * @typedef {object} StoredMessage
 * @property {string} message_id
 * @property {string} channel_id
 * @property {number} seq
 * @property {string} kind
 * @property {string} sender_member
 * @property {string} sender_device
 * @property {boolean} verified
 * @property {string} [error] 'no_key', 'forged', 'forged_sender', 'uncertified_device', 'not_a_member', 'pending_check', 'mislabelled', 'too_far_ahead' or 'undecryptable'
 * @property {any} [content] the decrypted content, its fields by kind
 * @property {number} [sent_at_ms]
 * @property {number} [stored_at]
 * @property {number | null} [expires_at]
 * @property {boolean} [deleted]
 */

/**
 * @typedef {object} ChannelContext
 * @property {App} app
 * @property {Messenger} m
 * @property {string} channelId
 * @property {() => Channel} channel the freshest record (the last one known if the list lost it)
 * @property {(memberId: string) => string} nameOf a member's name, "you" for this member
 * @property {() => boolean} mayManage whether this member may add, remove and moderate
 * @property {() => boolean} mayPost whether this member may write here
 */

/**
 * @param {App} app
 * @param {Channel} channel the channel as first found
 * @returns {ChannelContext}
 */
export function channelContext(app, channel) {
  const m = app.messenger;
  const channelId = channel.channel_id;
  let latest = channel;
  const current = () => {
    latest = m.channel(channelId) || latest;
    return latest;
  };
  return {
    app,
    m,
    channelId,
    channel: current,
    nameOf: (memberId) => (memberId === m.memberId ? t('channel.you') : m.memberName(memberId) || t('channel.someone')),
    mayManage: () => m.mayManage(current()),
    mayPost: () => m.mayPost(current()),
  };
}

/** Move focus to the composer's text, when this member may write (else nowhere). */
export function focusComposer() {
  document.getElementById('composer-text')?.focus();
}

/** @param {string} channelKind */
export function kindLabel(channelKind) {
  return { tribe: t('channel.tribe'), direct: t('channel.direct') }[channelKind] || t('channel.group');
}

/** @param {string} channelKind */
export function kindIcon(channelKind) {
  return { tribe: '📢', direct: '💬' }[channelKind] || '👥';
}
