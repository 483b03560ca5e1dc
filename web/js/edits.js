// @ts-check
// Edits (docs/protocol.md, section 7): bocage/client/edits.py in JS. A text message shows the
// text of the latest verified edit by its own sender; an edit by anyone else is ignored, since
// the server, or another member, could otherwise put words in someone's mouth. Pure; runs
// under node (tests/browser/test_wire_compat.py).

/**
 * For each edited text message, its sender's latest edit: message id -> {text, seq}.
 * @param {{message_id: string, kind: string, seq: number, sender_member: string|null, verified: boolean, content?: any}[]} messages
 * @returns {Map<string, {text: string, seq: number}>}
 */
export function latestEdits(messages) {
  const originals = new Map(messages.filter((m) => m.verified && m.kind === 'message').map((m) => [m.message_id, m]));
  /** @type {Map<string, {text: string, seq: number}>} */
  const latest = new Map();
  for (const edit of messages) {
    if (edit.kind !== 'edit' || !edit.verified) continue;
    const original = originals.get(edit.content?.target);
    const text = edit.content?.text;
    if (!original || original.sender_member !== edit.sender_member || edit.seq <= original.seq || typeof text !== 'string') continue;
    const previous = latest.get(original.message_id);
    if (!previous || previous.seq < edit.seq) latest.set(original.message_id, { text, seq: edit.seq });
  }
  return latest;
}
