// This client's own operations until the server answers them: the outbox (every operation not yet
// acknowledged, in the order it was made, kept across reconnects and, through `onChange`, in the
// browser's storage) and the pending cells (the optimistic values of cell edits, each remembering
// the op that carries it). An entry may also be a paste's rest, waiting for the rows and columns
// its inserts add (`message` null, `paste` set): it is the page's to send when they are there.

import { historyKind } from "./protocol.js";

export class Edits {
  /** onChange(): the outbox changed (`stored()` gives it as it is kept). */
  constructor({ onChange = () => {} } = {}) {
    this.outbox = []; // [{op, message, sent, cells, paste}]
    this.pending = new Map(); // row id -> Map(col id -> {value, op})
    this.cellsOf = new Map(); // op -> [{rowId, colId}] it made pending
    this.onChange = onChange;
  }

  /** Queues an operation; `cells` ([{rowId, colId, value}]) become pending under its op id. */
  add({ op, message, cells = [], paste = null }) {
    this.outbox.push({ op, message, sent: false, cells, paste });
    this.#pend(op, cells, new Set());
    this.onChange();
  }

  /**
   * Puts `operations` (as `add` takes them) where the entry `op` is (a paste's rest, whose cells can
   * be written now), so that they keep its place in the order: before an undo queued after the paste.
   * A cell an operation queued later is pending for stays pending for that one.
   */
  replace(op, operations) {
    const at = this.outbox.findIndex((entry) => entry.op === op);
    if (at < 0) return;
    this.settle(op);
    const later = new Set(this.outbox.slice(at).map((entry) => entry.op));
    this.outbox.splice(at, 0, ...operations.map(({ op: id, message, cells = [] }) => ({ op: id, message, sent: false, cells, paste: null })));
    for (const { op: id, cells = [] } of operations) this.#pend(id, cells, later);
    this.onChange();
  }

  #pend(op, cells, later) {
    this.cellsOf.set(op, cells.map(({ rowId, colId }) => ({ rowId, colId })));
    for (const { rowId, colId, value } of cells) {
      let row = this.pending.get(rowId);
      if (!row) this.pending.set(rowId, (row = new Map()));
      if (!later.has(row.get(colId)?.op)) row.set(colId, { value, op });
    }
  }

  /** The outbox as it is stored, JSON-safe [{op, message, cells, paste}]: what `add` takes back after a reload. */
  stored() {
    return this.outbox.map(({ op, message, cells, paste }) => ({ op, message, cells, paste }));
  }

  /** The paste rests waiting for their inserts: [{op, paste}]. */
  pastes() {
    return this.outbox.filter((entry) => entry.paste);
  }

  get waiting() {
    return this.outbox.length;
  }

  has(op) {
    return this.outbox.some((entry) => entry.op === op);
  }

  /**
   * The operations still to send, oldest first. An undo, redo or restore waits (and everything after
   * it) while a paste queued before it still has cells to write: it must take in the whole paste.
   */
  unsent() {
    const out = [];
    let pasting = false;
    for (const entry of this.outbox) {
      if (entry.paste) pasting = true;
      if (entry.sent || !entry.message) continue;
      if (pasting && historyKind(entry.message)) break;
      out.push(entry);
    }
    return out;
  }

  /** "undo", "redo" or "restore" when `op` is one of those waiting for its answer, else null. */
  historyOf(op) {
    return historyKind(this.outbox.find((entry) => entry.op === op)?.message);
  }

  /** The message of the operation `op` waiting for its answer, or null (none, or a paste's rest). */
  messageOf(op) {
    return this.outbox.find((entry) => entry.op === op)?.message ?? null;
  }

  /** The messages of the operations waiting, oldest first (the tab bar lays the sheet ones over the tabs). */
  messages() {
    return this.outbox.map((entry) => entry.message).filter(Boolean);
  }

  /** After a lost connection every unacknowledged operation is sent again (op ids make that safe). */
  resendAll() {
    for (const entry of this.outbox) entry.sent = false;
  }

  /** Sends an operation again later (the server asked us to slow down). */
  retry(op) {
    const entry = this.outbox.find((e) => e.op === op);
    if (entry) entry.sent = false;
  }

  /**
   * The server answered `op` (with its change, or with an error): forgets the operation and the
   * cells still pending under it, and returns those cells as [{rowId, colId}].
   */
  settle(op) {
    this.outbox = this.outbox.filter((entry) => entry.op !== op);
    const settled = [];
    for (const { rowId, colId } of this.cellsOf.get(op) || []) {
      const row = this.pending.get(rowId);
      if (row?.get(colId)?.op !== op) continue; // edited again since, or its row is gone
      row.delete(colId);
      if (!row.size) this.pending.delete(rowId);
      settled.push({ rowId, colId });
    }
    this.cellsOf.delete(op);
    this.onChange();
    return settled;
  }

  /** {value} when the cell has an edit of ours the server has not confirmed, else undefined. */
  pendingAt(rowId, colId) {
    return this.pending.get(rowId)?.get(colId);
  }

  /** Forgets pending cells in rows or columns that no longer exist (their operations stay queued). */
  dropRows(rowIds) {
    for (const id of rowIds) this.pending.delete(id);
  }

  dropCols(colIds) {
    for (const row of this.pending.values()) for (const id of colIds) row.delete(id);
  }
}
