// The workbook's WebSocket: connects, reconnects with capped exponential backoff, and tells its owner
// when it is up, when it went down, and when the server closed it for good. A connection can die
// without a close (a pulled cable, a sleeping laptop, a dead Wi-Fi): after QUIET_MS without a
// message it pings, and a socket that does not answer within PONG_WAIT_MS counts as down, as does
// every socket once the browser says it is offline. The server closes a socket its client sent
// nothing on for 30 s, so a page that only watches a busy workbook pings after KEEPALIVE_MS of sending
// nothing, though it hears plenty. A close that says the workbook, the role or the login is gone stops
// it: its owner decides what comes next (after a 4401 the browser may be logged in still, with a new
// session key after a password change, and then `start` again reconnects).

import { CLOSE_ACCESS_REMOVED, CLOSE_LOGIN_ENDED, CLOSE_ROLE_CHANGED, CLOSE_WORKBOOK_DELETED, encode, ping, socketPath } from "./protocol.js";

const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 5000;
const QUIET_MS = 5000;
const KEEPALIVE_MS = 12000;
const PONG_WAIT_MS = 4000;
const CHECK_EVERY_MS = 1000;
// The backoff starts again from its shortest wait once a connection has stayed up this long, not at
// every open: a server that accepts and then closes at once (overloaded, or refusing what this page
// sends) is retried ever more slowly instead of hammered.
const STABLE_MS = 10000;
const CLOSE_DEAD = 4000; // what onDown reports for a connection this side gave up on
const FINAL_CODES = new Set([CLOSE_LOGIN_ENDED, CLOSE_ACCESS_REMOVED, CLOSE_WORKBOOK_DELETED]);

export function socketUrl(workbookId, location = window.location) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${socketPath(workbookId)}`;
}

export class WorkbookSocket {
  /**
   * handlers: onOpen(), onMessage(text), onDown({code, attempt, delay}) when the connection is lost
   * (or could not be made) and a retry is scheduled, onGone(code) when the server closed it for good
   * (the socket then stays stopped until `start`).
   */
  constructor(url, handlers) {
    this.url = url;
    this.handlers = handlers;
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
    this.stopped = false;
    this.heardAt = 0;
    this.sentAt = 0;
    this.openedAt = 0;
    this.pingedAt = null;
    this.checker = null;
    window.addEventListener("online", () => this.reconnectNow());
    window.addEventListener("offline", () => this.#giveUp());
  }

  get isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  start() {
    if (!this.stopped && (this.ws !== null || this.timer !== null)) return; // running already
    clearTimeout(this.timer);
    this.stopped = false;
    this.attempt = 0;
    this.#connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.checker);
    if (this.ws) this.ws.close(1000);
  }

  /** Sends one message if the socket is open; false when it is not (the caller keeps it). */
  send(message) {
    if (!this.isOpen) return false;
    this.ws.send(encode(message));
    this.sentAt = Date.now();
    return true;
  }

  /** Skips the backoff wait (the network came back). */
  reconnectNow() {
    if (this.stopped || this.ws !== null) return;
    clearTimeout(this.timer);
    this.#connect();
  }

  #connect() {
    this.timer = null;
    if (navigator.onLine === false) {
      // No network: the attempt would fail anyway; the browser's online event brings us back.
      this.#retryLater(CLOSE_DEAD);
      return;
    }
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.addEventListener("open", () => {
      this.openedAt = this.heardAt = this.sentAt = Date.now();
      this.pingedAt = null;
      clearInterval(this.checker);
      this.checker = setInterval(() => this.#checkAlive(ws), CHECK_EVERY_MS);
      this.handlers.onOpen();
    });
    ws.addEventListener("message", (event) => {
      if (this.ws !== ws) return;
      this.heardAt = Date.now();
      this.pingedAt = null;
      this.handlers.onMessage(event.data);
    });
    ws.addEventListener("close", (event) => this.#closed(ws, event.code));
  }

  /** Pings a quiet socket, or one this page has sent nothing on for a while; gives up on one whose ping went unanswered. */
  #checkAlive(ws) {
    if (this.ws !== ws || ws.readyState !== WebSocket.OPEN) return;
    const now = Date.now();
    if (now - this.openedAt > STABLE_MS && this.pingedAt === null) this.attempt = 0;
    if (this.pingedAt !== null && now - this.pingedAt > PONG_WAIT_MS) this.#giveUp();
    else if (this.pingedAt === null && (now - this.heardAt > QUIET_MS || now - this.sentAt > KEEPALIVE_MS)) {
      this.pingedAt = now;
      this.send(ping());
    }
  }

  /** Treats the current connection as lost now: a dead one may take minutes to report its close. */
  #giveUp() {
    const ws = this.ws;
    if (ws === null || this.stopped) return;
    ws.close();
    this.#closed(ws, CLOSE_DEAD);
  }

  #closed(ws, code) {
    if (this.ws !== ws) return;
    this.ws = null;
    clearInterval(this.checker);
    if (this.stopped) return;
    if (FINAL_CODES.has(code)) {
      this.stopped = true;
      this.handlers.onGone(code);
      return;
    }
    this.#retryLater(code);
  }

  #retryLater(code) {
    // A role change closes the socket so the next hello carries the new role: come straight back.
    const jittered = FIRST_DELAY_MS * 2 ** this.attempt * (0.8 + Math.random() * 0.4);
    const delay = code === CLOSE_ROLE_CHANGED ? 0 : Math.min(MAX_DELAY_MS, jittered);
    this.attempt += 1;
    this.handlers.onDown({ code, attempt: this.attempt, delay });
    this.timer = setTimeout(() => this.#connect(), delay);
  }
}
