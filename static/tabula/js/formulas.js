// Formula cells, browser side. The server computes every value; a formula travels as `parts`, text
// pieces and references by id (docs/protocol.md), and its A1 text is rendered here against this tab's
// grid exactly as workbooks/domain/formulas/references.py renders it, so that inserting rows or
// renaming a sheet re-sends no formula.

import { columnTitle } from "./model.js";

const REF_ERROR = "#REF!";
const PLAIN_SHEET = /^[\p{L}_][\p{L}\p{N}\p{Mn}\p{Pc}.]*$/u;
const CELL = /^\$?[A-Za-z]{1,3}\$?\d{1,7}$/;

/** A value a formula computed as an error: {error: "#DIV/0!", message?}. */
export function isError(value) {
  return value !== null && typeof value === "object" && typeof value.error === "string";
}

/** A formula typed in this tab and not yet computed by the server: {formula: "=..."}. */
export function isTypedFormula(value) {
  return value !== null && typeof value === "object" && typeof value.formula === "string";
}

/** A sheet's name as a reference writes it: quoted unless plain, and unless it could be read as a cell. */
export function quoteSheet(name) {
  if (PLAIN_SHEET.test(name) && !CELL.test(name) && !["TRUE", "FALSE"].includes(name.toUpperCase())) return name;
  return `'${name.replaceAll("'", "''")}'`;
}

/**
 * A reference's A1 text; `by` ({rows, cols}) moves its relative parts that far (a formula copied or
 * filled elsewhere, as spreadsheets move it: `$` parts stay). A cell it names that is gone, or moved
 * off the sheet, is #REF!.
 */
function renderReference(ref, ownSheetId, workbook, by = { rows: 0, cols: 0 }) {
  const target = workbook.sheet(ref.sheet ?? ownSheetId);
  if (!target) return REF_ERROR;
  const prefix = ref.sheet === null || ref.sheet === undefined ? "" : `${quoteSheet(target.name)}!`;
  const abs = ref.abs || [];
  const moved = (index, id, fixed, step, count) => {
    const at = index.get(id);
    if (at === undefined) return undefined;
    const to = fixed ? at : at + step;
    return to >= 0 && to < count ? to : undefined;
  };
  const row = (id, fixed) => moved(target.rowIndex, id, fixed, by.rows, target.rowIds.length);
  const col = (id, fixed) => moved(target.colIndex, id, fixed, by.cols, target.colIds.length);
  if ("row" in ref) {
    const r = row(ref.row, abs[0]);
    const c = col(ref.col, abs[1]);
    if (r === undefined || c === undefined) return REF_ERROR;
    return `${prefix}${abs[1] ? "$" : ""}${columnTitle(c)}${abs[0] ? "$" : ""}${r + 1}`;
  }
  const rows = ref.rows ? [row(ref.rows[0], abs[0]), row(ref.rows[1], abs[2])] : null;
  const cols = ref.cols ? [col(ref.cols[0], abs[1]), col(ref.cols[1], abs[3])] : null;
  if ((rows && rows.includes(undefined)) || (cols && cols.includes(undefined))) return REF_ERROR;
  const dollar = (on) => (on ? "$" : "");
  if (!rows) return `${prefix}${dollar(abs[1])}${columnTitle(cols[0])}:${dollar(abs[3])}${columnTitle(cols[1])}`;
  if (!cols) return `${prefix}${dollar(abs[0])}${rows[0] + 1}:${dollar(abs[2])}${rows[1] + 1}`;
  return `${prefix}${dollar(abs[1])}${columnTitle(cols[0])}${dollar(abs[0])}${rows[0] + 1}:${dollar(abs[3])}${columnTitle(cols[1])}${dollar(abs[2])}${rows[1] + 1}`;
}

/**
 * The A1 text of a formula's `parts` on sheet `ownSheetId`, against `workbook` (a WorkbookModel) as
 * this tab has it; `by` ({rows, cols}): as copied that many rows and columns away.
 */
export function formulaText(parts, ownSheetId, workbook, by) {
  return parts.map((part) => (typeof part === "string" ? part : renderReference(part, ownSheetId, workbook, by))).join("");
}

// A reference as typed in A1 text: an optional sheet ('Quoted name'! or Plain!), then a cell or a range
// of cells, whole columns (A:C) or whole rows (2:5).
const REFERENCE =
  /(?:'((?:[^']|'')+)'!|([\p{L}_][\p{L}\p{N}_.]*)!)?(?:(\$?[A-Za-z]{1,3}\$?\d{1,7})(?::(\$?[A-Za-z]{1,3}\$?\d{1,7}))?|(\$?[A-Za-z]{1,3}):(\$?[A-Za-z]{1,3})|(\$?\d{1,7}):(\$?\d{1,7}))(?![\p{L}\p{N}_(!])/uy;

function columnIndex(letters) {
  let n = 0;
  for (const ch of letters.replaceAll("$", "").toUpperCase()) n = n * 26 + ch.charCodeAt(0) - 64;
  return n - 1;
}

function cellAt(text) {
  const [, letters, digits] = /^\$?([A-Za-z]+)\$?(\d+)$/.exec(text);
  return { row: Number(digits) - 1, col: columnIndex(letters) };
}

/**
 * The references in a formula's text, in order: [{start, end, sheet (its name, or null for the
 * formula's own), top, left, bottom, right}] (positions; a whole column's rows, a whole row's columns
 * are null). Text in quotes is skipped, as are names that only look like references (a function's).
 */
export function referencesIn(text) {
  const found = [];
  if (!text.startsWith("=")) return found;
  let i = 1;
  while (i < text.length) {
    const ch = text[i];
    if (ch === '"') {
      const close = text.indexOf('"', i + 1);
      i = close < 0 ? text.length : close + 1;
      continue;
    }
    const before = text[i - 1];
    if (/[\p{L}\p{N}_.$]/u.test(before)) {
      i += 1;
      continue;
    }
    REFERENCE.lastIndex = i;
    const m = REFERENCE.exec(text);
    if (!m) {
      i += 1;
      continue;
    }
    const sheet = m[1] !== undefined ? m[1].replaceAll("''", "'") : (m[2] ?? null);
    let box;
    if (m[3]) {
      const [a, b] = [cellAt(m[3]), cellAt(m[4] ?? m[3])];
      box = { top: Math.min(a.row, b.row), left: Math.min(a.col, b.col), bottom: Math.max(a.row, b.row), right: Math.max(a.col, b.col) };
    } else if (m[5]) {
      const [a, b] = [columnIndex(m[5]), columnIndex(m[6])];
      box = { top: null, left: Math.min(a, b), bottom: null, right: Math.max(a, b) };
    } else {
      const [a, b] = [Number(m[7].replace("$", "")) - 1, Number(m[8].replace("$", "")) - 1];
      box = { top: Math.min(a, b), left: null, bottom: Math.max(a, b), right: null };
    }
    found.push({ start: i, end: REFERENCE.lastIndex, sheet, ...box });
    i = REFERENCE.lastIndex;
  }
  return found;
}

/** The A1 text of a cell, or of a range of cells (top-left to bottom-right), by position. */
export function a1(top, left, bottom = top, right = left) {
  const first = `${columnTitle(left)}${top + 1}`;
  return top === bottom && left === right ? first : `${first}:${columnTitle(right)}${bottom + 1}`;
}

// Where a reference can be pointed at (a click on the grid inserts one): after "=", an operator, "(" or ",".
const POINTABLE = /[=(,+\-*/^&<>:;%\s]$/;

/**
 * Pointing at cells while a formula is typed, as spreadsheets do: a click on the grid puts the cell's
 * reference at the cursor (a drag, the range's), and the next click replaces what the last one put.
 */
export class Pointer {
  constructor() {
    this.last = null; // {field, start, end} of the reference last pointed at
    this.dragFrom = null;
  }

  /** Whether a click on the grid points, for a field (the bar's input or the cell's editor) being typed in. */
  canPoint(field) {
    if (!field || !field.value.startsWith("=") || field.selectionStart !== field.selectionEnd) return false;
    const cursor = field.selectionStart;
    if (this.last && this.last.field === field && this.last.end === cursor) return true;
    return POINTABLE.test(field.value.slice(0, cursor));
  }

  /** Points at a cell (`extend`: drags from the cell pointed at first to this one). */
  point(field, row, col, extend) {
    if (!extend) this.dragFrom = { row, col };
    const from = this.dragFrom ?? { row, col };
    const text = a1(Math.min(from.row, row), Math.min(from.col, col), Math.max(from.row, row), Math.max(from.col, col));
    const cursor = field.selectionStart;
    const replacing = this.last && this.last.field === field && this.last.end === cursor;
    const start = replacing ? this.last.start : cursor;
    field.value = field.value.slice(0, start) + text + field.value.slice(cursor);
    const end = start + text.length;
    field.setSelectionRange(end, end);
    this.last = { field, start, end };
    field.dispatchEvent(new Event("input", { bubbles: true }));
    this.last = { field, start, end }; // the input event forgets pointing typed by hand, not this
  }

  /** Typing by hand ends a run of pointing. */
  typed() {
    this.last = null;
  }

  done() {
    this.dragFrom = null;
  }
}
