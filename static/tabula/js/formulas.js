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

function renderReference(ref, ownSheetId, workbook) {
  const target = workbook.sheet(ref.sheet ?? ownSheetId);
  if (!target) return REF_ERROR;
  const prefix = ref.sheet === null || ref.sheet === undefined ? "" : `${quoteSheet(target.name)}!`;
  const row = (id) => target.rowIndex.get(id);
  const col = (id) => target.colIndex.get(id);
  const abs = ref.abs || [];
  if ("row" in ref) {
    const r = row(ref.row);
    const c = col(ref.col);
    if (r === undefined || c === undefined) return REF_ERROR;
    return `${prefix}${abs[1] ? "$" : ""}${columnTitle(c)}${abs[0] ? "$" : ""}${r + 1}`;
  }
  const rows = ref.rows ? [row(ref.rows[0]), row(ref.rows[1])] : null;
  const cols = ref.cols ? [col(ref.cols[0]), col(ref.cols[1])] : null;
  if ((rows && rows.includes(undefined)) || (cols && cols.includes(undefined))) return REF_ERROR;
  const dollar = (on) => (on ? "$" : "");
  if (!rows) return `${prefix}${dollar(abs[1])}${columnTitle(cols[0])}:${dollar(abs[3])}${columnTitle(cols[1])}`;
  if (!cols) return `${prefix}${dollar(abs[0])}${rows[0] + 1}:${dollar(abs[2])}${rows[1] + 1}`;
  return `${prefix}${dollar(abs[1])}${columnTitle(cols[0])}${dollar(abs[0])}${rows[0] + 1}:${dollar(abs[3])}${columnTitle(cols[1])}${dollar(abs[2])}${rows[1] + 1}`;
}

/** The A1 text of a formula's `parts` on sheet `ownSheetId`, against `workbook` (a WorkbookModel) as this tab has it. */
export function formulaText(parts, ownSheetId, workbook) {
  return parts.map((part) => (typeof part === "string" ? part : renderReference(part, ownSheetId, workbook))).join("");
}
