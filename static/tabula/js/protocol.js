// The wire format, browser side. With workbooks/protocol.py this is the only code that knows the JSON
// field names (docs/protocol.md describes them): it builds every client message and turns every
// server message and snapshot into the plain shapes the other modules use.

import { isTypedFormula } from "./formulas.js";

export const CLOSE_LOGIN_ENDED = 4401;
export const CLOSE_ACCESS_REMOVED = 4403;
export const CLOSE_WORKBOOK_DELETED = 4404;
export const CLOSE_ROLE_CHANGED = 4409;

// Below the server's 1 MiB message limit with room for the envelope.
const MESSAGE_BUDGET_BYTES = 900 * 1024;
const utf8 = new TextEncoder();

/** A cell's value as the wire holds it: empty text clears a cell, as null. */
export function cellValue(value) {
  return value === "" || value === undefined || value === null ? null : value;
}

/** A fresh operation id: unique per workbook, at most 64 characters. */
export function newOpId() {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  // crypto.randomUUID needs a secure context; plain-http deployments still get 128 random bits.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// ------------------------------------------------------------ client messages
// Each operation comes back as {op, message}: the op id travels separately so the outbox and the
// pending cells can refer to it without reading the message. Every operation carries `tags`:
// {session, group}, the browser tab that made it (undo takes back one session's changes) and, for the
// operations of one user action that takes several, a group id they share (undone as one step).

function operation(type, fields, { session, group } = {}) {
  const op = newOpId();
  const message = { type, op, ...fields };
  if (session) message.session = session;
  if (group) message.group = group;
  return { op, message };
}

/**
 * Turns cell writes [{rowId, colId, value}] on sheet `sheet` into as few `set` operations as the
 * limits allow: one, unless there are more than maxCells cells or they would not fit in one message.
 * `rev` is the revision the grid showed (the server then reports what the edit replaced that others
 * wrote since); `session` and `group` are the operations' tags (several operations share a group even
 * without one: one edit is one step to undo). Returns [{op, message, cells}] where cells are the
 * writes that operation carries.
 */
export function setOperations(writes, { sheet, maxCells, rev, session, group }) {
  const chunks = [];
  let cells = [];
  let wire = [];
  let bytes = 0;
  for (const write of writes) {
    const cell = isTypedFormula(write.value) ? { row: write.rowId, col: write.colId, formula: write.value.formula } : { row: write.rowId, col: write.colId, value: write.value };
    const size = utf8.encode(JSON.stringify(cell)).length + 1;
    if (wire.length && (wire.length >= maxCells || bytes + size > MESSAGE_BUDGET_BYTES)) {
      chunks.push([cells, wire]);
      cells = [];
      wire = [];
      bytes = 0;
    }
    cells.push(write);
    wire.push(cell);
    bytes += size;
  }
  if (wire.length) chunks.push([cells, wire]);
  const tags = { session, group: group || (chunks.length > 1 ? newOpId() : undefined) };
  return chunks.map(([chunkCells, chunkWire]) => ({ ...operation("set", { sheet, cells: chunkWire, rev }, tags), cells: chunkCells }));
}

// Grid operations name the sheet they change (ids are unique in the workbook, but the server checks
// that they belong to it: an edit made on a sheet deleted since is refused, not applied elsewhere).
export const insertRows = (sheet, beforeRowId, count, tags) => operation("insert_rows", { sheet, before: beforeRowId, count }, tags);
export const insertCols = (sheet, beforeColId, count, tags) => operation("insert_cols", { sheet, before: beforeColId, count }, tags);
export const deleteRows = (sheet, rowIds, tags) => operation("delete_rows", { sheet, rows: rowIds }, tags);
export const deleteCols = (sheet, colIds, tags) => operation("delete_cols", { sheet, cols: colIds }, tags);

// The tabs. `before` is the sheet to go before, null for the end (a duplicate without it goes right
// after its original).
export const addSheet = (name, before, tags) => operation("add_sheet", { name, before }, tags);
export const duplicateSheet = (sheet, name, tags) => operation("duplicate_sheet", { sheet, name }, tags);
export const renameSheet = (sheet, name, tags) => operation("rename_sheet", { sheet, name }, tags);
export const moveSheet = (sheet, before, tags) => operation("move_sheet", { sheet, before }, tags);
export const deleteSheet = (sheet, tags) => operation("delete_sheet", { sheet }, tags);

/** The operations (and change kinds) that change the list of tabs rather than a sheet's grid. */
export const SHEET_TYPES = new Set(["add_sheet", "duplicate_sheet", "rename_sheet", "move_sheet", "delete_sheet"]);
/** Takes back the latest step of the tab's session (`tags.session`) not undone yet. */
export const undo = (tags) => operation("undo", {}, tags);
/** Applies again the latest step the session undid. */
export const redo = (tags) => operation("redo", {}, tags);
/** Makes the workbook as it was at revision `rev`, as one new change (which undo takes back like any other). */
export const restore = (rev, tags) => operation("restore", { rev }, tags);

const HISTORY_TYPES = new Set(["undo", "redo", "restore"]);

/** "undo", "redo" or "restore" for those operations' messages, else null. */
export function historyKind(message) {
  return message && HISTORY_TYPES.has(message.type) ? message.type : null;
}

export const sync = (since) => ({ type: "sync", since });
export const ping = () => ({ type: "ping" });

/** The sheet shown and, in it, ranges: [{top, left, bottom, right}] of ids (top/left = first row/col id of the range). */
export const select = (sheet, ranges) => ({ type: "select", sheet, ranges: ranges.map((r) => [r.top, r.left, r.bottom, r.right]) });

export const encode = (message) => JSON.stringify(message);

// ------------------------------------------------------------ server messages

/**
 * The snapshot of GET /api/workbooks/{id}/ as {id, name, rev, role, sheets}, the sheets in tab order,
 * each {id, name, colIds, titles, rows: [{id, values}]}.
 */
export function readSnapshot(json) {
  return {
    id: json.id,
    name: json.name,
    rev: json.rev,
    role: json.role,
    sheets: (json.sheets || []).map((s) => ({
      id: s.id,
      name: String(s.name),
      colIds: s.columns.map((c) => c.id),
      titles: s.columns.map((c) => c.title),
      rows: (s.rows || []).map((r) => ({ id: r.id, values: r.values })),
      formulas: (s.formulas || []).map((f) => ({ rowId: f.row, colId: f.col, parts: f.parts })),
    })),
  };
}

/** The workbook now, or (with `rev`) as it was at that revision. */
/**
 * The sheet a page address names (`#sheet=12`), or null. Tabs are sheets of one page: the address's
 * fragment names the one shown, so that a link opens it, and switching tabs loads nothing.
 */
export function sheetInHash(hash) {
  const id = Number(new URLSearchParams(String(hash || "").replace(/^#/, "")).get("sheet") ?? NaN);
  return Number.isSafeInteger(id) ? id : null;
}

export const sheetHash = (sheetId) => `#sheet=${encodeURIComponent(sheetId)}`;

export const snapshotUrl = (workbookId, rev) => `/api/workbooks/${encodeURIComponent(workbookId)}/${rev === undefined ? "" : `?rev=${encodeURIComponent(rev)}`}`;
export const socketPath = (workbookId) => `/ws/workbooks/${encodeURIComponent(workbookId)}/`;
export const membersUrl = (workbookId) => `/api/workbooks/${encodeURIComponent(workbookId)}/members`;
/** The login page, leading back to `next` (a path on this site) once logged in. */
export const loginUrl = (next) => `/accounts/login/?next=${encodeURIComponent(next)}`;

function readUser(user) {
  return {
    id: user.id,
    name: String(user.name),
    color: user.color,
    sheet: user.sheet ?? null, // the sheet the user is on (their selection is in it)
    ranges: (user.selection || []).map(([top, left, bottom, right]) => ({ top, left, bottom, right })),
  };
}

/**
 * A change as the model applies it: {rev, op, by: {id, name}, kind, ...its fields (readBody)}. An undo,
 * redo or restore is kind "batch": {steps, undoOf | redoOf | restoreOf, skipped}, where each step is
 * {kind, ...} as a change (without rev, op and by), applied in order at the change's one revision
 * (restoreOf: the revision a restore went back to), and skipped: [{sheetId, rowId, colId}] what it
 * left as it is (each null when it does not apply: a cell has all three, a sheet only sheetId,
 * the workbook's name none).
 */
function readChange(m) {
  const change = { rev: m.rev, op: m.op, by: { id: m.by?.id, name: m.by?.name } };
  // Every other cell whose computed value the change altered, and the formulas whose references it rewrote.
  change.computed = (m.computed || []).map((c) => ({ sheetId: c.sheet, rowId: c.row, colId: c.col, value: c.value }));
  change.formulas = (m.formulas || []).map((f) => ({ sheetId: f.sheet, rowId: f.row, colId: f.col, parts: f.parts }));
  if (m.kind !== "batch") return Object.assign(change, readBody(m));
  change.kind = "batch";
  change.steps = (m.steps || []).map(readBody);
  if (m.undo_of !== undefined && m.undo_of !== null) change.undoOf = m.undo_of;
  if (m.redo_of !== undefined && m.redo_of !== null) change.redoOf = m.redo_of;
  if (m.restore_of !== undefined && m.restore_of !== null) change.restoreOf = m.restore_of;
  change.skipped = (m.skipped || []).map((s) => ({ sheetId: s.sheet ?? null, rowId: s.row ?? null, colId: s.col ?? null }));
  return change;
}

/**
 * The body of a change or of a batch's step: {kind, ...its fields}. Grid kinds carry `sheet` (null in
 * a change logged before workbooks had sheets: the first sheet), and:
 * set {cells: [{rowId, colId, value}], overwritten: [{rowId, colId, by, rev, value}]};
 * insert_rows / insert_cols {before, ids} (the new ones); delete_rows / delete_cols {ids};
 * rename {name} (the workbook's); add_sheet {sheet, name, before, colIds, rowIds};
 * duplicate_sheet the same and {from} (the original, copied positionally); rename_sheet {sheet, name};
 * move_sheet {sheet, before}; delete_sheet {sheet}.
 */
function readBody(m) {
  const change = { kind: m.kind };
  switch (m.kind) {
    case "set":
      change.sheet = m.sheet ?? null;
      // A formula cell carries its parts; its value is what it computed.
      change.cells = m.cells.map((c) => (c.parts ? { rowId: c.row, colId: c.col, value: c.value, parts: c.parts } : { rowId: c.row, colId: c.col, value: c.value }));
      change.overwritten = (m.overwritten || []).map((o) => ({
        rowId: o.row,
        colId: o.col,
        by: { id: o.by?.id, name: String(o.by?.name) },
        rev: o.rev,
        value: typeof o.formula === "string" ? { formula: o.formula } : o.value, // a formula as it read at this change
      }));
      break;
    case "insert_rows":
    case "insert_cols":
      change.sheet = m.sheet ?? null;
      change.before = m.before;
      change.ids = m.kind === "insert_rows" ? m.rows : m.cols;
      break;
    case "delete_rows":
    case "delete_cols":
      change.sheet = m.sheet ?? null;
      change.ids = m.kind === "delete_rows" ? m.rows : m.cols;
      break;
    case "rename":
      change.name = m.name;
      break;
    case "add_sheet":
    case "duplicate_sheet":
      change.sheet = m.sheet;
      change.name = String(m.name);
      change.before = m.before ?? null;
      change.colIds = m.columns || [];
      change.rowIds = m.rows || [];
      if (m.kind === "duplicate_sheet") change.from = m.from;
      break;
    case "rename_sheet":
      change.sheet = m.sheet;
      change.name = String(m.name);
      break;
    case "move_sheet":
      change.sheet = m.sheet;
      change.before = m.before ?? null;
      break;
    case "delete_sheet":
      change.sheet = m.sheet;
      break;
    default:
      break;
  }
  return change;
}

/** One server message as {type, ...}; null for anything this client does not understand. */
export function readMessage(text) {
  let m;
  try {
    m = JSON.parse(text);
  } catch {
    return null;
  }
  if (!m || typeof m !== "object") return null;
  switch (m.type) {
    case "hello":
      return { type: "hello", rev: m.rev, role: m.role, me: { id: m.me.id, name: m.me.name, color: m.me.color }, users: m.presence.map(readUser) };
    case "change":
      return { type: "change", change: readChange(m) };
    case "error":
      return { type: "error", op: m.op, code: m.code, message: m.message };
    case "presence":
      return { type: "presence", users: m.users.map(readUser) };
    case "synced":
      return { type: "synced", rev: m.rev };
    case "reload":
      return { type: "reload" };
    case "pong":
      return { type: "pong" };
    default:
      return null;
  }
}

/** The message of a JSON API error body ({"error", "message"}), if it is one. */
export function apiErrorMessage(json) {
  return json && typeof json.message === "string" ? json.message : null;
}

/** The code of a JSON API error body ({"error", "message"}), if it is one: "history_truncated" and so on. */
export function apiErrorCode(json) {
  return json && typeof json.error === "string" ? json.error : null;
}

// ------------------------------------------------------------ the past: cell history and versions

function query(params) {
  const pairs = Object.entries(params).filter(([, value]) => value !== undefined && value !== null);
  return pairs.length ? `?${pairs.map(([key, value]) => `${key}=${encodeURIComponent(value)}`).join("&")}` : "";
}

/** Every value a cell of a sheet held, newest first: below revision `before` (default: all), at most `limit`. */
export const cellHistoryUrl = (workbookId, sheetId, rowId, colId, { before, limit } = {}) =>
  `/api/workbooks/${encodeURIComponent(workbookId)}/sheets/${encodeURIComponent(sheetId)}/cells/${encodeURIComponent(rowId)}/${encodeURIComponent(colId)}/history${query({ before, limit })}`;

/** The workbook's versions, newest first: below revision `before` (default: all), at most `limit`. */
export const versionsUrl = (workbookId, { before, limit } = {}) => `/api/workbooks/${encodeURIComponent(workbookId)}/versions${query({ before, limit })}`;

const readAuthor = (by) => ({ id: by?.id, name: String(by?.name ?? "") });

/**
 * A cell's history as [{rev, at: Date, by: {id, name}, value, computed}], newest first: `value` what the
 * change wrote, a formula as {formula} (its text as it read at `rev`), and `computed` what it gave.
 */
export function readCellVersions(json) {
  return (json?.versions || []).map((v) => ({
    rev: v.rev,
    at: new Date(v.at),
    by: readAuthor(v.by),
    value: typeof v.formula === "string" ? { formula: v.formula } : v.value,
    computed: v.computed,
  }));
}

/**
 * The workbook's versions as [{rev, firstRev, at: Date, by: {id, name}, kinds, count}], newest first: each
 * is changes firstRev to rev of one author (`count` of them, of the change kinds `kinds`), `at` the
 * time of the latest. The workbook as it was after one is the snapshot at its `rev`.
 */
export function readVersions(json) {
  return (json?.versions || []).map((v) => ({ rev: v.rev, firstRev: v.first_rev, at: new Date(v.at), by: readAuthor(v.by), kinds: [...(v.kinds || [])], count: v.count }));
}
