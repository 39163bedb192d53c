// Boot and the rules that tie the parts together. What the grid shows is the confirmed server model
// with this client's pending edits laid over it; server changes move the model forward in revision
// order, and the user's edits travel as operations that the server's changes later confirm.

import { Edits } from "./edits.js";
import { Grid } from "./grid.js";
import { SheetModel } from "./model.js";
import { Presence, Throttle } from "./presence.js";
import * as protocol from "./protocol.js";
import { SheetSocket, socketUrl } from "./socket.js";

const SEND_PER_SECOND = 200; // below the server's sustained limit, leaving room for select and sync
const NOTICE_MS = 10000;
const PROBE_EVERY = 4; // failed reconnects between checks that the sheet is still ours

const cellKey = (rowId, colId) => JSON.stringify([rowId, colId]);

class SheetSession {
  constructor(config, page) {
    this.config = config;
    this.page = page;
    this.role = config.role;
    this.limits = config.limits;
    this.edits = new Edits();
    this.presence = new Presence(page.presence);
    this.model = null;
    this.grid = null;
    this.held = new Map(); // rev -> change that arrived ahead of a missing one
    this.deferred = new Map(); // cellKey -> {rowId, colId}: remote values waiting for an editor to close
    this.live = false;
    this.syncing = false;
    this.reloading = false;
    this.gone = null; // why the sheet can no longer be reached, once it cannot
    this.sentThisSecond = 0;
    this.pumpTimer = null;
    this.selection = [];
    this.inbox = [];
    this.inboxTimer = null;
    this.selectThrottle = new Throttle((ranges) => this.live && this.socket.send(protocol.select(ranges)));
  }

  async start() {
    const snapshot = await this.snapshotWhenReachable();
    if (!snapshot) return;
    this.model = new SheetModel(snapshot);
    this.showName(this.model.name);
    // The snapshot's rows are the model's values in column order already (the model copied them):
    // the grid takes them as they are rather than having the model build them again.
    this.grid = new Grid(
      this.page.grid,
      { licenseKey: this.config.licenseKey, readOnly: this.isViewer, titles: this.model.titles, rows: snapshot.rows.map((r) => r.values) },
      {
        onEdit: (changes) => this.userEdited(changes),
        onStructure: (action) => this.userRestructured(action),
        onSelect: (ranges) => this.userSelected(ranges),
        onEditorMaybeClosed: () => this.flushDeferred(),
      },
    );
    this.socket = new SheetSocket(socketUrl(this.config.sheetId), {
      onOpen: () => this.showConnection(),
      onMessage: (text) => this.enqueue(text),
      onDown: (info) => this.connectionLost(info),
      onGone: (code) => this.closedForGood(code),
    });
    this.socket.start();
  }

  get isViewer() {
    return this.role === "viewer";
  }

  // ------------------------------------------------------------ snapshot

  /** The sheet as the server has it now, or null (and the reason on screen). */
  async fetchSnapshot() {
    let response;
    try {
      response = await fetch(protocol.snapshotUrl(this.config.sheetId), { headers: { Accept: "application/json" }, credentials: "same-origin" });
    } catch {
      this.notify("Could not reach the server to load the sheet; retrying.");
      return null;
    }
    const body = await response.json().catch(() => null);
    if (response.ok) return protocol.readSnapshot(body);
    if ([401, 403, 404].includes(response.status)) {
      this.stopForGood(protocol.apiErrorMessage(body) || "This sheet is not available to you.");
    } else {
      this.notify(protocol.apiErrorMessage(body) || `Loading the sheet failed (${response.status}).`);
    }
    return null;
  }

  /** Fetches the snapshot, retrying while the server cannot be reached; null once the sheet is gone. */
  async snapshotWhenReachable() {
    for (;;) {
      const snapshot = await this.fetchSnapshot();
      if (snapshot || this.gone) return snapshot;
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }

  async reload() {
    if (this.reloading) return;
    this.reloading = true;
    const snapshot = await this.snapshotWhenReachable();
    this.reloading = false;
    if (!snapshot) return;
    this.model = new SheetModel(snapshot);
    this.showName(this.model.name);
    this.deferred.clear();
    this.grid.load(this.displayRows(), this.model.titles);
    this.grid.setHighlights(this.presence.rectangles(this.model));
    for (const rev of [...this.held.keys()]) if (rev <= this.model.rev) this.held.delete(rev);
    this.syncing = false;
    this.drain();
    this.requestSync();
  }

  // ------------------------------------------------------------ server messages

  /** Messages that arrive together are handled together, with the grid drawn once after them. */
  enqueue(text) {
    this.inbox.push(text);
    if (this.inboxTimer === null) this.inboxTimer = setTimeout(() => this.processInbox(), 0);
  }

  processInbox() {
    this.inboxTimer = null;
    const texts = this.inbox;
    this.inbox = [];
    this.grid.batch(() => {
      for (const text of texts) this.received(protocol.readMessage(text));
    });
  }

  received(message) {
    if (!message || !this.model) return;
    switch (message.type) {
      case "hello":
        return this.hello(message);
      case "change":
        return this.receiveChange(message.change);
      case "error":
        return this.operationFailed(message);
      case "presence":
        this.presence.update(message.users);
        return this.grid.setHighlights(this.presence.rectangles(this.model));
      case "synced":
        this.syncing = false;
        this.drain();
        if (message.rev > this.model.rev || this.held.size) this.requestSync();
        return undefined;
      case "reload":
        this.syncing = false;
        return this.reload();
      default:
        return undefined;
    }
  }

  hello(message) {
    this.live = true;
    this.syncing = false;
    if (message.role !== this.role) this.changeRole(message.role);
    this.presence.setMe(message.me);
    this.presence.update(message.users);
    this.grid.setHighlights(this.presence.rectangles(this.model));
    // Close any gap first, then resend what was never acknowledged: a retried op the server already
    // applied is answered with its original change, which the sync has delivered by then.
    this.requestSync();
    this.edits.resendAll();
    this.pump();
    if (this.selection.length) this.selectThrottle.push(this.selection);
    this.showConnection();
  }

  receiveChange(change) {
    if (change.rev <= this.model.rev) {
      this.settle(change.op); // a duplicate: the answer to a retried op, or a change a sync already gave
      return;
    }
    this.held.set(change.rev, change);
    if (this.reloading) return;
    this.drain();
    if (this.held.size) this.requestSync();
  }

  /** Applies every held change that follows the model, in order. */
  drain() {
    while (this.held.has(this.model.rev + 1)) {
      const change = this.held.get(this.model.rev + 1);
      this.held.delete(change.rev);
      this.apply(change);
    }
    for (const rev of this.held.keys()) if (rev <= this.model.rev) this.held.delete(rev);
    this.showConnection();
  }

  requestSync() {
    if (!this.live || this.syncing || this.reloading) return;
    this.syncing = this.socket.send(protocol.sync(this.model.rev));
  }

  apply(change) {
    const editing = this.editingIds();
    const effect = this.model.apply(change);
    switch (effect.kind) {
      case "set": {
        // Our own cells already show what the server applied; others' never cover a pending edit.
        const ours = new Set(this.edits.has(change.op) ? this.edits.settle(change.op).map((c) => cellKey(c.rowId, c.colId)) : []);
        this.refresh(effect.cells.filter((c) => !ours.has(cellKey(c.rowId, c.colId)) && !this.edits.pendingAt(c.rowId, c.colId)));
        break;
      }
      case "insert_rows":
        this.grid.insertRows(effect.at, effect.count);
        break;
      case "insert_cols":
        this.grid.insertCols(effect.at, effect.count, this.model.titles);
        break;
      case "delete_rows":
        this.edits.dropRows(change.ids);
        this.grid.removeRows(effect.positions);
        break;
      case "delete_cols":
        this.edits.dropCols(change.ids);
        this.grid.removeCols(effect.positions, this.model.titles);
        break;
      case "rename":
        this.showName(effect.name);
        break;
      default:
        break;
    }
    if (editing && !this.positionOf(editing)) this.notify("The cell you were editing was deleted by someone else.");
    if (effect.kind !== "set") {
      this.settle(change.op);
      if (effect.kind !== "rename") this.grid.setHighlights(this.presence.rectangles(this.model));
    }
  }

  /** The server answered one of our ops: its cells stop being pending and show the model's values. */
  settle(op) {
    if (!this.edits.has(op)) return;
    this.refresh(this.edits.settle(op));
    this.showConnection();
  }

  operationFailed(message) {
    if (message.op && this.edits.has(message.op)) {
      if (message.code === "rate_limited") {
        this.edits.retry(message.op);
        this.schedulePump(1000);
        return;
      }
      this.refresh(this.edits.settle(message.op));
      this.showConnection();
    }
    this.notify(`Not saved: ${message.message}`);
  }

  // ------------------------------------------------------------ what the grid shows

  shown(rowId, colId) {
    const pending = this.edits.pendingAt(rowId, colId);
    return pending ? pending.value : this.model.value(rowId, colId);
  }

  displayRows() {
    return this.model.rowIds.map((r) => this.model.colIds.map((c) => this.shown(r, c)));
  }

  editingIds() {
    const cell = this.grid.editingCell();
    if (!cell) return null;
    const rowId = this.model.rowIds[cell.row];
    const colId = this.model.colIds[cell.col];
    return rowId === undefined || colId === undefined ? null : { rowId, colId };
  }

  positionOf({ rowId, colId }) {
    const row = this.model.rowIndex.get(rowId);
    const col = this.model.colIndex.get(colId);
    return row === undefined || col === undefined ? null : { row, col };
  }

  /** Redraws cells [{rowId, colId}] from the model and pending edits; never under an open editor. */
  refresh(cells) {
    const editing = this.editingIds();
    const updates = [];
    for (const { rowId, colId } of cells) {
      const at = this.positionOf({ rowId, colId });
      if (!at) continue;
      if (editing && editing.rowId === rowId && editing.colId === colId) {
        this.deferred.set(cellKey(rowId, colId), { rowId, colId });
        continue;
      }
      updates.push([at.row, at.col, this.shown(rowId, colId)]);
    }
    this.grid.setCells(updates);
  }

  flushDeferred() {
    if (!this.deferred.size || this.grid.editingCell()) return;
    const cells = [...this.deferred.values()];
    this.deferred.clear();
    this.refresh(cells);
  }

  // ------------------------------------------------------------ the user's actions

  userEdited(changes) {
    if (this.isViewer || this.gone) {
      this.refresh(changes.map((c) => this.idsAt(c.row, c.col)).filter(Boolean));
      return;
    }
    const writes = [];
    const tooLong = [];
    for (const { row, col, old, value } of changes) {
      const ids = this.idsAt(row, col);
      if (!ids) continue;
      const next = protocol.cellValue(value);
      if (next === protocol.cellValue(old)) continue;
      if (typeof next === "string" && next.length > this.limits.maxValueChars) tooLong.push(ids);
      else writes.push({ ...ids, value: next });
    }
    if (tooLong.length) {
      this.refresh(tooLong);
      this.notify(`Not saved: a cell holds at most ${this.limits.maxValueChars} characters.`);
    }
    if (!writes.length) return;
    for (const operation of protocol.setOperations(writes, { maxCells: this.limits.maxCellsPerSet })) this.edits.add(operation);
    this.pump();
    this.showConnection();
  }

  userRestructured(action) {
    if (this.isViewer || this.gone) return;
    const rows = this.model.rowIds;
    const cols = this.model.colIds;
    const ids = (order) => (action.positions || []).map((p) => order[p]).filter((id) => id !== undefined);
    let operation;
    if (action.kind === "insert_rows") operation = protocol.insertRows(rows[action.before] ?? null, action.count);
    else if (action.kind === "insert_cols") operation = protocol.insertCols(cols[action.before] ?? null, action.count);
    else if (action.kind === "delete_rows" && ids(rows).length) operation = protocol.deleteRows(ids(rows));
    else if (action.kind === "delete_cols" && ids(cols).length) operation = protocol.deleteCols(ids(cols));
    if (!operation) return;
    this.edits.add(operation);
    this.pump();
    this.showConnection();
  }

  userSelected(ranges) {
    const byIds = [];
    for (const r of ranges) {
      const top = this.model.rowIds[r.top];
      const bottom = this.model.rowIds[r.bottom];
      const left = this.model.colIds[r.left];
      const right = this.model.colIds[r.right];
      if ([top, bottom, left, right].every((id) => id !== undefined)) byIds.push({ top, left, bottom, right });
    }
    this.selection = byIds;
    this.selectThrottle.push(byIds);
  }

  idsAt(row, col) {
    const rowId = this.model.rowIds[row];
    const colId = this.model.colIds[col];
    return rowId === undefined || colId === undefined ? null : { rowId, colId };
  }

  // ------------------------------------------------------------ sending

  /** Sends unsent operations in order, at most SEND_PER_SECOND a second. */
  pump() {
    if (!this.live) return;
    for (const entry of this.edits.unsent()) {
      if (this.sentThisSecond >= SEND_PER_SECOND) {
        this.schedulePump(1000);
        return;
      }
      if (!this.socket.send(entry.message)) return;
      entry.sent = true;
      if (this.sentThisSecond++ === 0) setTimeout(() => (this.sentThisSecond = 0), 1000);
    }
  }

  schedulePump(delay) {
    if (this.pumpTimer !== null) return;
    this.pumpTimer = setTimeout(() => {
      this.pumpTimer = null;
      this.pump();
    }, delay);
  }

  // ------------------------------------------------------------ connection

  connectionLost({ attempt }) {
    this.live = false;
    this.syncing = false;
    this.presence.clear();
    this.grid.setHighlights([]);
    this.showConnection();
    if (attempt % PROBE_EVERY === 0) this.probe();
  }

  /** After repeated refusals: is the sheet still there for us? (A refused handshake carries no reason.) */
  async probe() {
    try {
      const response = await fetch(protocol.snapshotUrl(this.config.sheetId), { method: "GET", credentials: "same-origin" });
      if ([401, 403, 404].includes(response.status)) {
        const body = await response.json().catch(() => null);
        this.socket.stop();
        this.stopForGood(protocol.apiErrorMessage(body) || "This sheet is no longer available to you.");
      }
    } catch {
      // the server is still unreachable: keep retrying
    }
  }

  closedForGood(code) {
    const why = code === protocol.CLOSE_SHEET_DELETED ? "This sheet was deleted." : "Your access to this sheet was removed.";
    this.stopForGood(why);
  }

  stopForGood(why) {
    this.gone = why;
    this.live = false;
    this.presence.clear();
    if (this.grid) {
      this.grid.setReadOnly(true);
      this.grid.setHighlights([]);
    }
    this.notify(why, { sticky: true });
    this.showConnection();
  }

  changeRole(role) {
    this.role = role;
    this.page.role.textContent = role;
    this.grid.setReadOnly(this.isViewer);
  }

  // ------------------------------------------------------------ the page around the grid

  showConnection() {
    const el = this.page.connection;
    const waiting = this.edits.waiting;
    let state;
    let text;
    if (this.gone) {
      [state, text] = ["offline", "disconnected"];
    } else if (this.live) {
      [state, text] = ["live", "live"];
    } else if (waiting) {
      [state, text] = ["offline", `offline — ${waiting} ${waiting === 1 ? "edit" : "edits"} waiting`];
    } else {
      [state, text] = ["reconnecting", "reconnecting…"];
    }
    el.dataset.state = state;
    el.dataset.waiting = String(waiting);
    el.textContent = text;
  }

  showName(name) {
    this.page.name.textContent = name;
    document.title = `${name} · Tabula`;
  }

  notify(text, { sticky = false } = {}) {
    const notice = this.page.notice;
    notice.textContent = text;
    notice.hidden = false;
    clearTimeout(this.noticeTimer);
    if (!sticky && !this.gone) this.noticeTimer = setTimeout(() => (notice.hidden = true), NOTICE_MS);
  }
}

function boot() {
  const config = JSON.parse(document.getElementById("tabula-config").textContent);
  const page = {
    name: document.getElementById("sheet-name"),
    role: document.getElementById("role"),
    connection: document.getElementById("connection"),
    presence: document.getElementById("presence"),
    notice: document.getElementById("notice"),
    grid: document.getElementById("grid"),
  };
  page.notice.addEventListener("click", () => {
    if (!session.gone) page.notice.hidden = true;
  });
  const session = new SheetSession(config, page);
  window.tabula = session; // for the console and the browser tests: read-only inspection
  session.start();
}

boot();
