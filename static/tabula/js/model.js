// The confirmed server model: the workbook as of revision `rev`, changed only by the server's changes,
// applied one after the other exactly as workbooks/domain/grid.py applies them. A workbook is its name
// and its sheets in tab order; each sheet is a grid whose cells are keyed by (row id, column id), its
// positions the index of an id in rowIds / colIds. Sheet, row and column ids are unique in the
// workbook: a cell's (row, column) ids say which sheet it is on.

/** Spreadsheet letters for a 0-based column position: 0 -> A, 25 -> Z, 26 -> AA (as the server titles them). */
export function columnTitle(position) {
  let title = "";
  let n = position + 1;
  while (n > 0) {
    const rem = (n - 1) % 26;
    title = String.fromCharCode(65 + rem) + title;
    n = Math.floor((n - 1) / 26);
  }
  return title;
}

/** One sheet's grid. */
export class SheetModel {
  /** sheet: {id, name, colIds, titles, rows: [{id, values}], formulas?: [{rowId, colId, parts}]}, as protocol.readSnapshot gives each. */
  constructor(sheet) {
    this.id = sheet.id;
    this.name = sheet.name;
    this.colIds = [...sheet.colIds];
    this.titles = [...sheet.titles];
    this.rowIds = sheet.rows.map((r) => r.id);
    this.cells = new Map(); // row id -> Map(col id -> value, a formula cell's computed); empty cells are absent
    this.formulas = new Map(); // row id -> Map(col id -> parts) of its formula cells
    for (const f of sheet.formulas || []) this.#setFormula(f.rowId, f.colId, f.parts);
    for (const row of sheet.rows) {
      row.values.forEach((value, i) => {
        if (value !== null && value !== undefined && i < this.colIds.length) this.#put(row.id, this.colIds[i], value);
      });
    }
    this.#reindex();
  }

  /** A sheet with these rows and columns (ids in order), its cells empty and its columns titled by position. */
  static empty(id, name, colIds, rowIds) {
    return new SheetModel({ id, name, colIds, titles: colIds.map((_, i) => columnTitle(i)), rows: rowIds.map((rowId) => ({ id: rowId, values: [] })) });
  }

  #reindex() {
    this.rowIndex = new Map(this.rowIds.map((id, i) => [id, i]));
    this.colIndex = new Map(this.colIds.map((id, i) => [id, i]));
  }

  #put(rowId, colId, value) {
    let row = this.cells.get(rowId);
    if (!row) this.cells.set(rowId, (row = new Map()));
    row.set(colId, value);
  }

  #setFormula(rowId, colId, parts) {
    let row = this.formulas.get(rowId);
    if (!parts) {
      row?.delete(colId);
      return;
    }
    if (!row) this.formulas.set(rowId, (row = new Map()));
    row.set(colId, parts);
  }

  /** A formula cell's parts (the wire's), or undefined for a literal or empty cell. */
  formula(rowId, colId) {
    return this.formulas.get(rowId)?.get(colId);
  }

  /** The server's word on a cell's computed value (a change's `computed`), or on a formula's parts (its `formulas`). */
  compute(rowId, colId, value) {
    if (!this.hasRow(rowId) || !this.hasCol(colId)) return;
    if (value === null || value === undefined) this.cells.get(rowId)?.delete(colId);
    else this.#put(rowId, colId, value);
  }

  reformulate(rowId, colId, parts) {
    if (this.hasRow(rowId) && this.hasCol(colId)) this.#setFormula(rowId, colId, parts);
  }

  value(rowId, colId) {
    const v = this.cells.get(rowId)?.get(colId);
    return v === undefined ? null : v;
  }

  hasRow(rowId) {
    return this.rowIndex.has(rowId);
  }

  hasCol(colId) {
    return this.colIndex.has(colId);
  }

  /**
   * Applies one grid change body to this sheet and says what moved, for the grid:
   * {kind: 'set', cells}, {kind: 'insert_rows'|'insert_cols', at, count},
   * {kind: 'delete_rows'|'delete_cols', positions, ids} (positions before the delete, ascending; the
   * ids deleted).
   */
  apply(change) {
    switch (change.kind) {
      case "set": {
        const applied = [];
        for (const cell of change.cells) {
          if (!this.hasRow(cell.rowId) || !this.hasCol(cell.colId)) continue;
          if (cell.value === null || cell.value === undefined) this.cells.get(cell.rowId)?.delete(cell.colId);
          else this.#put(cell.rowId, cell.colId, cell.value);
          this.#setFormula(cell.rowId, cell.colId, cell.parts);
          applied.push(cell);
        }
        return { kind: "set", cells: applied };
      }
      case "insert_rows": {
        const at = this.#insert(this.rowIds, change.before, change.ids);
        return { kind: "insert_rows", at, count: change.ids.length };
      }
      case "insert_cols": {
        const at = this.#insert(this.colIds, change.before, change.ids);
        this.titles = this.colIds.map((_, i) => columnTitle(i));
        return { kind: "insert_cols", at, count: change.ids.length };
      }
      case "delete_rows": {
        const gone = new Set(change.ids);
        const positions = this.#positions(this.rowIndex, gone);
        this.rowIds = this.rowIds.filter((id) => !gone.has(id));
        for (const id of gone) {
          this.cells.delete(id);
          this.formulas.delete(id);
        }
        this.#reindex();
        return { kind: "delete_rows", positions, ids: change.ids };
      }
      case "delete_cols": {
        const gone = new Set(change.ids);
        const positions = this.#positions(this.colIndex, gone);
        this.colIds = this.colIds.filter((id) => !gone.has(id));
        for (const row of [...this.cells.values(), ...this.formulas.values()]) for (const id of gone) row.delete(id);
        this.titles = this.colIds.map((_, i) => columnTitle(i));
        this.#reindex();
        return { kind: "delete_cols", positions, ids: change.ids };
      }
      default:
        return { kind: "unknown" };
    }
  }

  /**
   * A copy of this sheet's values, position for position, under other ids (a duplicate's: the server
   * issued them); its formulas point into the copy where they pointed into this sheet, as the server's do.
   */
  copy(id, name, colIds, rowIds) {
    const copy = SheetModel.empty(id, name, colIds, rowIds);
    const rowMap = new Map(this.rowIds.map((rowId, j) => [rowId, rowIds[j]]));
    const colMap = new Map(this.colIds.map((colId, i) => [colId, colIds[i]]));
    rowIds.forEach((rowId, j) => {
      const from = this.cells.get(this.rowIds[j]);
      const formulas = this.formulas.get(this.rowIds[j]);
      colIds.forEach((colId, i) => {
        const value = from?.get(this.colIds[i]);
        if (value !== undefined) copy.#put(rowId, colId, value);
        const parts = formulas?.get(this.colIds[i]);
        if (parts) copy.#setFormula(rowId, colId, remapParts(parts, this.id, id, rowMap, colMap));
      });
    });
    return copy;
  }

  #insert(order, before, newIds) {
    const found = before === null || before === undefined ? -1 : order.indexOf(before);
    const at = found < 0 ? order.length : found;
    order.splice(at, 0, ...newIds);
    this.#reindex();
    return at;
  }

  #positions(index, ids) {
    const positions = [];
    for (const id of ids) if (index.has(id)) positions.push(index.get(id));
    return positions.sort((a, b) => a - b);
  }
}

/** A formula's parts moved from sheet `original` into its copy `copyId` (ids mapped; other sheets' references kept). */
function remapParts(parts, original, copyId, rowMap, colMap) {
  const id = (map, value) => map.get(value) ?? value;
  return parts.map((part) => {
    if (typeof part === "string" || (part.sheet !== null && part.sheet !== undefined && part.sheet !== original)) return part;
    const sheet = part.sheet === null || part.sheet === undefined ? part.sheet : copyId;
    if ("row" in part) return { ...part, sheet, row: id(rowMap, part.row), col: id(colMap, part.col) };
    return {
      ...part,
      sheet,
      rows: part.rows && [id(rowMap, part.rows[0]), id(rowMap, part.rows[1])],
      cols: part.cols && [id(colMap, part.cols[0]), id(colMap, part.cols[1])],
    };
  });
}

const GRID_KINDS = new Set(["set", "insert_rows", "insert_cols", "delete_rows", "delete_cols"]);

export class WorkbookModel {
  /** snapshot: the shape protocol.readSnapshot returns. */
  constructor(snapshot) {
    this.name = snapshot.name;
    this.rev = snapshot.rev;
    this.sheets = snapshot.sheets.map((sheet) => new SheetModel(sheet)); // in tab order
  }

  /** The sheet of that id, or undefined (none such, or deleted). */
  sheet(id) {
    return this.sheets.find((s) => s.id === id);
  }

  /** The sheet holding the row of that id, or undefined. */
  sheetWithRow(rowId) {
    return this.sheets.find((s) => s.hasRow(rowId));
  }

  /** The sheet a grid change names; a change logged before workbooks had sheets names none: the first. */
  #sheetOf(change) {
    return change.sheet === null || change.sheet === undefined ? this.sheets[0] : this.sheet(change.sheet);
  }

  #position(before) {
    const at = before === null || before === undefined ? -1 : this.sheets.findIndex((s) => s.id === before);
    return at < 0 ? this.sheets.length : at;
  }

  /**
   * Applies the change following `rev` and says what moved: a grid change's effect as SheetModel.apply
   * says it, with the `sheet` it is on; {kind: 'rename', name} (the workbook's);
   * {kind: 'add_sheet'|'duplicate_sheet', sheet, at}; {kind: 'rename_sheet', sheet, name};
   * {kind: 'move_sheet', sheet, at}; {kind: 'delete_sheet', sheet, name, at, rowIds, colIds} (where
   * it was, and its rows and columns, gone with it); or for a batch (an undo, redo or restore)
   * {kind: 'batch', effects}: each of its steps' effects, in order, each as the workbook was after
   * the steps before it.
   */
  apply(change) {
    if (change.rev !== this.rev + 1) throw new Error(`change ${change.rev} does not follow revision ${this.rev}`);
    const effect = change.kind === "batch" ? { kind: "batch", effects: change.steps.map((step) => this.#applyKind(step)) } : this.#applyKind(change);
    // What the change did to other cells' values and to formulas' references (their text follows the grid).
    for (const cell of change.computed || []) this.sheet(cell.sheetId)?.compute(cell.rowId, cell.colId, cell.value);
    for (const cell of change.formulas || []) this.sheet(cell.sheetId)?.reformulate(cell.rowId, cell.colId, cell.parts);
    this.rev = change.rev;
    return effect;
  }

  #applyKind(change) {
    if (GRID_KINDS.has(change.kind)) {
      const sheet = this.#sheetOf(change);
      // A sheet this model does not hold cannot be named by a change that follows it; skip rather than break.
      if (!sheet) return { kind: change.kind === "set" ? "set" : "unknown", sheet: change.sheet, cells: [] };
      return { ...sheet.apply(change), sheet: sheet.id };
    }
    switch (change.kind) {
      case "rename":
        this.name = change.name;
        return { kind: "rename", name: change.name };
      case "add_sheet":
      case "duplicate_sheet": {
        const original = change.kind === "duplicate_sheet" ? this.sheet(change.from) : null;
        const sheet = original ? original.copy(change.sheet, change.name, change.colIds, change.rowIds) : SheetModel.empty(change.sheet, change.name, change.colIds, change.rowIds);
        const at = this.#position(change.before);
        this.sheets.splice(at, 0, sheet);
        return { kind: change.kind, sheet: sheet.id, at };
      }
      case "rename_sheet": {
        const sheet = this.sheet(change.sheet);
        if (sheet) sheet.name = change.name;
        return { kind: "rename_sheet", sheet: change.sheet, name: change.name };
      }
      case "move_sheet": {
        const from = this.sheets.findIndex((s) => s.id === change.sheet);
        if (from < 0 || change.before === change.sheet) return { kind: "move_sheet", sheet: change.sheet, at: from };
        const [sheet] = this.sheets.splice(from, 1);
        const at = this.#position(change.before);
        this.sheets.splice(at, 0, sheet);
        return { kind: "move_sheet", sheet: change.sheet, at };
      }
      case "delete_sheet": {
        const at = this.sheets.findIndex((s) => s.id === change.sheet);
        if (at < 0) return { kind: "delete_sheet", sheet: change.sheet, name: "", at, rowIds: [], colIds: [] };
        const [sheet] = this.sheets.splice(at, 1);
        return { kind: "delete_sheet", sheet: sheet.id, name: sheet.name, at, rowIds: sheet.rowIds, colIds: sheet.colIds };
      }
      default:
        return { kind: "unknown" };
    }
  }
}
