// @ts-check
// Polls, tallied on the device with the rules of bocage/client/polls.py: the server relays
// sealed votes only. One vote per member (their latest, from any of their devices), counted
// only from verified envelopes of current channel members, after the poll and before it closes.

export const MIN_OPTIONS = 2;
export const MAX_OPTIONS = 20;
export const MAX_QUESTION = 500;
export const MAX_OPTION = 200;

export class PollError extends Error {}

/** A follower's id (chalicelib/domain/ids.py is_follower_id): f_ and 16 characters. */
export const isFollowerId = (/** @type {string} */ id) => id.startsWith('f_') && id.length === 18;

/** The content of a poll message; PollError on what no client should accept either. */
export function newPoll(question, options, { multiple = false, closesAt = null, showVoters = false } = {}) {
  const q = String(question).trim();
  const cleaned = options.map((o) => String(o).trim());
  if (!q || q.length > MAX_QUESTION) throw new PollError('question');
  if (cleaned.length < MIN_OPTIONS || cleaned.length > MAX_OPTIONS) throw new PollError('options_count');
  if (cleaned.some((o) => !o || o.length > MAX_OPTION) || new Set(cleaned).size !== cleaned.length) {
    throw new PollError('options_distinct');
  }
  const content = { type: 'poll', question: q, options: cleaned, multiple: Boolean(multiple), closes_at: closesAt };
  return showVoters ? { ...content, show_voters: true } : content;
}

function validChoices(raw, size, multiple) {
  if (!Array.isArray(raw) || !raw.length || !raw.every((c) => Number.isInteger(c))) return null;
  if (new Set(raw).size !== raw.length || raw.some((c) => c < 0 || c >= size)) return null;
  if (!multiple && raw.length !== 1) return null;
  return [...raw].sort((a, b) => a - b);
}

/**
 * Who may vote in a channel, as a device judges it (section 8): the current `members` (and a
 * tribe's verified followers), and who left or was cut (`departed`: member id -> when, s).
 * @typedef {{members: Set<string>, departed: Record<string, number>, blocked?: boolean}} Electorate
 */

/**
 * Results of one poll from a channel's opened messages (`kind`, `seq`, `verified`, `content`,
 * `sender_member`, `stored_at`, `sent_at_ms`), `members` who may vote (`Messenger.voters`: the
 * verified membership cut at the ends, never the server's roster; section 8), `now` in seconds,
 * `departed` who left or was cut (member id -> when, s): a closed poll also counts those still
 * in when it closed, so its result stays as it was.
 * @param {any[]} messages
 * @param {string} pollId
 * @param {Set<string>} members
 * @param {number} [now]
 * @param {Record<string, number>} [departed]
 */
export function tally(messages, pollId, members, now = Date.now() / 1000, departed = {}) {
  const poll = messages.find((m) => m.message_id === pollId && m.kind === 'poll' && m.verified);
  if (!poll) throw new PollError('no_poll');
  const content = poll.content;
  const options = content.options;
  const closesAt = Number.isFinite(content.closes_at) ? content.closes_at : null; // anything else: no closing time, as in Python
  const closes = messages
    .filter((m) => m.kind === 'poll_close' && m.verified && m.content?.poll_id === pollId)
    .map((m) => m.seq);
  const closedSeq = closes.length ? Math.min(...closes) : null;
  const closedAt = closedAtOf(messages, closedSeq, closesAt, now);
  if (closedAt !== null) {
    members = new Set([...members, ...Object.keys(departed).filter((m) => departed[m] > closedAt)]);
  }
  const latest = new Map();
  for (const m of messages) {
    if (m.kind !== 'vote' || !m.verified || m.content?.poll_id !== pollId) continue;
    const late = (closedSeq !== null && m.seq > closedSeq) || (closesAt !== null && m.stored_at > closesAt);
    if (late || m.seq < poll.seq || !members.has(m.sender_member)) continue;
    const choices = validChoices(m.content.choices, options.length, Boolean(content.multiple));
    if (choices === null) continue;
    const seen = latest.get(m.sender_member);
    if (!seen || seen.seq < m.seq) latest.set(m.sender_member, { seq: m.seq, choices });
  }
  const counts = options.map(() => 0);
  const followerCounts = options.map(() => 0);
  for (const [voter, vote] of latest) {
    for (const c of vote.choices) {
      counts[c] += 1;
      if (isFollowerId(voter)) followerCounts[c] += 1;
    }
  }
  const showVoters = content.show_voters === true;
  /** @param {number} index */
  const chose = (index) => [...latest].filter(([, v]) => v.choices.includes(index)).map(([member]) => member).sort();
  return {
    poll_id: pollId,
    question: content.question,
    options: options.map((option, index) => ({ index, option, votes: counts[index], ...(showVoters ? { voter_ids: chose(index) } : {}) })),
    show_voters: showVoters,
    counts,
    // A public tribe's followers vote too (one device each): per option and in all, the part of
    // the counts that is theirs, so members' and followers' votes show apart.
    follower_counts: followerCounts,
    voters: latest.size,
    voter_ids: [...latest.keys()].sort(),
    follower_voters: [...latest.keys()].filter(isFollowerId).length,
    votes_by: Object.fromEntries([...latest].map(([member, v]) => [member, v.choices])),
    multiple: Boolean(content.multiple),
    closes_at: closesAt,
    closed: closedAt !== null,
  };
}

/**
 * When the poll closed (s), or null while open: the first verified close's signed date, or the
 * poll's closing time once passed, whichever came first.
 * @param {any[]} messages
 * @param {number|null} closedSeq
 * @param {number|null} closesAt
 * @param {number} now
 */
function closedAtOf(messages, closedSeq, closesAt, now) {
  const when = closesAt === null || now < closesAt ? [] : [closesAt];
  const closing = closedSeq === null ? null : messages.find((m) => m.seq === closedSeq);
  if (closing) when.push(closing.sent_at_ms / 1000);
  return when.length ? Math.min(...when) : null;
}
