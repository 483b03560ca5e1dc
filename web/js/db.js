// @ts-check
// What the device keeps, in IndexedDB (this origin only): its keys and identity (like the CLI
// profile's files), its sender-key ring (chain states, and message keys until they expire), and
// opened messages for offline reading, each removed once past its expires_at (the organisation's
// retention holds on the device too).

const NAME = 'bocage';
const VERSION = 1;

function promisify(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new Error('transaction aborted'));
  });
}

/** Sorted by the time written, then the message id. */
const outboxKey = (entry) => `outbox:${String(entry.queued_at).padStart(15, '0')}:${entry.message_id}`;

export class DeviceStore {
  constructor(db) {
    this.db = db;
    /** Bumped by every write to the messages: a reader's cache of them is stale when it moved. */
    this.writes = 0;
    /** Bumped when every channel's cache changed at once (expiry, erasure). */
    this.cleared = 0;
    /** @type {Map<string, number>} the value of `writes` at each channel's last change */
    this.channelWrites = new Map();
  }

  /** @param {string[]} channelIds the channels whose cached messages changed */
  changed(channelIds) {
    this.writes += 1;
    for (const id of channelIds) this.channelWrites.set(id, this.writes);
  }

  /** Every channel's cache changed at once. */
  clearedAll() {
    this.writes += 1;
    this.cleared += 1;
  }

  /**
   * A token that changes whenever the channel's cached messages may have changed: what a
   * preview read from them is kept by.
   * @param {string} channelId
   */
  version(channelId) {
    return `${this.channelWrites.get(channelId) ?? 0}/${this.cleared}`;
  }

  static async open(name = NAME) {
    const request = indexedDB.open(name, VERSION);
    request.onupgradeneeded = () => {
      const db = request.result;
      db.createObjectStore('kv'); // 'device', 'ring', 'channels' (the last list), per-channel 'cursor:<id>'
      const messages = db.createObjectStore('messages', { keyPath: ['channel_id', 'seq'] });
      messages.createIndex('expires_at', 'expires_at');
      messages.createIndex('message_id', ['channel_id', 'message_id']);
    };
    return new DeviceStore(await promisify(request));
  }

  async get(key) {
    return promisify(this.db.transaction('kv').objectStore('kv').get(key));
  }

  async put(key, value) {
    const tx = this.db.transaction('kv', 'readwrite');
    tx.objectStore('kv').put(value, key);
    await done(tx);
  }

  async delete(key) {
    const tx = this.db.transaction('kv', 'readwrite');
    tx.objectStore('kv').delete(key);
    await done(tx);
  }

  async device() {
    return (await this.get('device')) || null;
  }

  async saveDevice(device) {
    await this.put('device', device);
  }

  /** The ratchet ring (ratchet.js), or null before the first one; the messenger reads it with ringFrom. */
  async ring() {
    return (await this.get('ring')) || null;
  }

  async saveRing(ring) {
    await this.put('ring', ring);
  }

  async cursor(channelId) {
    return (await this.get(`cursor:${channelId}`)) || 0;
  }

  async saveCursor(channelId, cursor) {
    await this.put(`cursor:${channelId}`, cursor);
  }

  // -- writing that never loses anything: drafts and the outbox (purged with the rest) ----------

  /** The text being written in a channel, kept across navigation and restarts. */
  async draft(channelId) {
    return (await this.get(`draft:${channelId}`)) || '';
  }

  async saveDraft(channelId, text) {
    if (text) await this.put(`draft:${channelId}`, text);
    else await this.delete(`draft:${channelId}`);
  }

  /** Messages written but not yet stored by the server, oldest first (messenger.js flushOutbox). */
  async outbox() {
    const range = IDBKeyRange.bound('outbox:', 'outbox:\uffff');
    return promisify(this.db.transaction('kv').objectStore('kv').getAll(range));
  }

  async putOutbox(entry) {
    await this.put(outboxKey(entry), entry);
  }

  async removeOutbox(entry) {
    await this.delete(outboxKey(entry));
  }

  /** Store opened messages (a later copy of the same seq replaces the earlier). */
  async putMessages(messages) {
    if (!messages.length) return;
    const tx = this.db.transaction('messages', 'readwrite');
    const store = tx.objectStore('messages');
    for (const m of messages) store.put(m);
    await done(tx);
    this.changed([...new Set(messages.map((m) => m.channel_id))]);
  }

  /**
   * Replace cached messages by their revision (`[before, after]` pairs), each only if the store
   * still holds `before`: a record written meanwhile (a deletion, a message opened again) wins.
   * @param {[any, any][]} revisions
   */
  async reviseMessages(revisions) {
    const tx = this.db.transaction('messages', 'readwrite');
    const store = tx.objectStore('messages');
    for (const [before, after] of revisions) {
      const request = store.get([before.channel_id, before.seq]);
      request.onsuccess = () => {
        if (JSON.stringify(request.result) === JSON.stringify(before)) store.put(after);
      };
    }
    await done(tx);
    this.changed([...new Set(revisions.map(([before]) => before.channel_id))]);
  }

  async messages(channelId, now = Math.floor(Date.now() / 1000)) {
    const range = IDBKeyRange.bound([channelId, 0], [channelId, Number.MAX_SAFE_INTEGER]);
    return unexpired(await promisify(this.db.transaction('messages').objectStore('messages').getAll(range)), now);
  }

  /** Every unexpired message this device keeps, all channels (search.js searches them). */
  async allMessages(now = Math.floor(Date.now() / 1000)) {
    return unexpired(await promisify(this.db.transaction('messages').objectStore('messages').getAll()), now);
  }

  /** A channel's newest `limit` unexpired messages, oldest first (the channel list's preview). */
  async recentMessages(channelId, limit, now = Math.floor(Date.now() / 1000)) {
    const range = IDBKeyRange.bound([channelId, 0], [channelId, Number.MAX_SAFE_INTEGER]);
    const request = this.db.transaction('messages').objectStore('messages').openCursor(range, 'prev');
    const newest = [];
    await new Promise((resolve, reject) => {
      request.onsuccess = () => {
        const cursor = request.result;
        if (!cursor || newest.length >= limit) return resolve();
        newest.push(...unexpired([cursor.value], now));
        cursor.continue();
      };
      request.onerror = () => reject(request.error);
    });
    return newest.reverse();
  }

  /** Delete every cached message past its expiry; returns how many went. */
  async purgeExpired(now = Math.floor(Date.now() / 1000)) {
    const tx = this.db.transaction('messages', 'readwrite');
    const index = tx.objectStore('messages').index('expires_at');
    let count = 0;
    await new Promise((resolve, reject) => {
      const request = index.openCursor(IDBKeyRange.upperBound(now));
      request.onsuccess = () => {
        const cursor = request.result;
        if (!cursor) return resolve();
        cursor.delete();
        count += 1;
        cursor.continue();
      };
      request.onerror = () => reject(request.error);
    });
    await done(tx);
    if (count) this.clearedAll();
    return count;
  }

  /** Forget a channel's cache (the member left it). */
  async dropChannel(channelId) {
    const tx = this.db.transaction(['messages', 'kv'], 'readwrite');
    tx.objectStore('messages').delete(IDBKeyRange.bound([channelId, 0], [channelId, Number.MAX_SAFE_INTEGER]));
    tx.objectStore('kv').delete(`cursor:${channelId}`);
    await done(tx);
    this.changed([channelId]);
  }

  /** Erase cached messages, cursors and sender keys; keep who this device was. */
  async eraseContent() {
    const tx = this.db.transaction(['messages', 'kv'], 'readwrite');
    tx.objectStore('messages').clear();
    const kv = tx.objectStore('kv');
    await new Promise((resolve, reject) => {
      const request = kv.getAllKeys();
      request.onsuccess = () => {
        for (const key of request.result) if (key !== 'device') kv.delete(key);
        resolve();
      };
      request.onerror = () => reject(request.error);
    });
    await done(tx);
    this.clearedAll();
  }

  /** Forget everything: keys, ring and messages. */
  async wipe() {
    this.db.close();
    await promisify(indexedDB.deleteDatabase(NAME));
  }
}

/** What may still be shown: nothing expired ever is. */
function unexpired(messages, now) {
  return messages.filter((m) => !m.expires_at || m.expires_at > now);
}
