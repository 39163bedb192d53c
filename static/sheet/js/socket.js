// The sheet's WebSocket: connects, reconnects with capped exponential backoff, and tells its owner
// when it is up, when it went down, and when the server closed it for good.

import { CLOSE_ACCESS_REMOVED, CLOSE_ROLE_CHANGED, CLOSE_SHEET_DELETED, encode, socketPath } from "./protocol.js";

const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 5000;
const FINAL_CODES = new Set([CLOSE_ACCESS_REMOVED, CLOSE_SHEET_DELETED]);

export function socketUrl(sheetId, location = window.location) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${socketPath(sheetId)}`;
}

export class SheetSocket {
  /**
   * handlers: onOpen(), onMessage(text), onDown({code, attempt, delay}) when the connection is lost
   * (or could not be made) and a retry is scheduled, onGone(code) when the server closed it for good.
   */
  constructor(url, handlers) {
    this.url = url;
    this.handlers = handlers;
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
    this.stopped = false;
    window.addEventListener("online", () => this.reconnectNow());
  }

  get isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  start() {
    this.stopped = false;
    this.#connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000);
  }

  /** Sends one message if the socket is open; false when it is not (the caller keeps it). */
  send(message) {
    if (!this.isOpen) return false;
    this.ws.send(encode(message));
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
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.addEventListener("open", () => {
      this.attempt = 0;
      this.handlers.onOpen();
    });
    ws.addEventListener("message", (event) => {
      if (this.ws === ws) this.handlers.onMessage(event.data);
    });
    ws.addEventListener("close", (event) => this.#closed(ws, event.code));
  }

  #closed(ws, code) {
    if (this.ws !== ws) return;
    this.ws = null;
    if (this.stopped) return;
    if (FINAL_CODES.has(code)) {
      this.stopped = true;
      this.handlers.onGone(code);
      return;
    }
    // A role change closes the socket so the next hello carries the new role: come straight back.
    const jittered = FIRST_DELAY_MS * 2 ** this.attempt * (0.8 + Math.random() * 0.4);
    const delay = code === CLOSE_ROLE_CHANGED ? 0 : Math.min(MAX_DELAY_MS, jittered);
    this.attempt += 1;
    this.handlers.onDown({ code, attempt: this.attempt, delay });
    this.timer = setTimeout(() => this.#connect(), delay);
  }
}
