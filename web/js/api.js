// @ts-check
// The REST client: every call signed by the device key (bocage/client/api.py).
import { canonicalQuery, signToken, utf8 } from './wire.js';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(`${status} ${code}: ${message}`);
    this.status = status;
    this.code = code;
    this.detail = message;
  }
}

export class Api {
  /** `device`: {deviceId, signSecretKey}, or null for the public routes. */
  constructor(server, device = null) {
    this.server = server.replace(/\/+$/, '');
    this.device = device;
    this.clockOffset = 0; // server time minus ours, in seconds, learnt from the Date header
    this.onUnauthorized = null;
  }

  now() {
    return Math.floor(Date.now() / 1000) + this.clockOffset;
  }

  learnClock(response) {
    const date = Date.parse(response.headers.get('Date') || '');
    if (!Number.isNaN(date)) {
      const offset = Math.round((date - Date.now()) / 1000);
      this.clockOffset = Math.abs(offset) > 5 ? offset : 0;
    }
  }

  /**
   * @param {string} method
   * @param {string} path
   * @param {{body?: unknown, query?: Record<string, unknown>, retried?: boolean}} [options]
   */
  async request(method, path, { body, query, retried = false } = {}) {
    const data = body === undefined ? new Uint8Array(0) : utf8(JSON.stringify(body));
    const q = Object.fromEntries(Object.entries(query || {}).filter(([, v]) => v !== undefined && v !== null).map(([k, v]) => [k, String(v)]));
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (this.device) {
      const token = await signToken(this.device.signSecretKey, this.device.deviceId, method, path, q, data, this.now());
      headers.Authorization = `Bocage ${token}`;
    }
    const search = canonicalQuery(q);
    let response;
    try {
      response = await fetch(this.server + path + (search ? `?${search}` : ''), {
        method,
        headers,
        body: body === undefined ? undefined : data,
        cache: 'no-store',
        credentials: 'omit',
        referrerPolicy: 'no-referrer',
      });
    } catch (err) {
      throw new ApiError(0, 'network', err.message || 'network error');
    }
    const text = await response.text();
    let payload = null;
    try {
      payload = text ? JSON.parse(text) : {};
    } catch {
      payload = null;
    }
    if (!response.ok) {
      const code = payload && typeof payload.error === 'string' ? payload.error : 'error';
      const message = payload && typeof payload.message === 'string' ? payload.message : text.slice(0, 200);
      if (response.status === 401 && !retried && /lifetime|expired/i.test(message)) {
        this.learnClock(response); // our clock is off: sign with the server's and try once more
        return this.request(method, path, { body, query, retried: true });
      }
      const error = new ApiError(response.status, code, message);
      if (response.status === 401 && this.onUnauthorized) this.onUnauthorized(error);
      throw error;
    }
    if (payload === null || typeof payload !== 'object') {
      throw new ApiError(response.status, 'bad_response', `not a Bocage API reply from ${this.server}`);
    }
    return payload;
  }

  get(path, query) {
    return this.request('GET', path, { query });
  }

  async health() {
    const response = await fetch(`${this.server}/health`, { cache: 'no-store', credentials: 'omit' });
    this.learnClock(response);
    if (!response.ok) throw new ApiError(response.status, 'unavailable', 'the server is not answering');
    return response.json();
  }
}
