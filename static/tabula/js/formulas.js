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
