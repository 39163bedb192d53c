// The confirmed server model: the workbook as of revision `rev`, changed only by the server's changes,
// applied one after the other exactly as workbooks/domain/grid.py applies them. Cells are keyed by
// (row id, column id); positions are the index of an id in rowIds / colIds.

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

export class WorkbookModel {
  /** snapshot: the shape protocol.readSnapshot returns. */
  constructor(snapshot) {
    this.name = snapshot.name;
    this.rev = snapshot.rev;
    this.colIds = [...snapshot.colIds];
    this.titles = [...snapshot.titles];
    this.rowIds = snapshot.rows.map((r) => r.id);
    this.cells = new Map(); // row id -> Map(col id -> value); empty cells are absent
    for (const row of snapshot.rows) {
      row.values.forEach((value, i) => {
        if (value !== null && value !== undefined) this.#put(row.id, this.colIds[i], value);
      });
    }
    this.#reindex();
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
   * Applies the change following `rev` and says what moved, for the grid:
   * {kind: 'set', cells}, {kind: 'insert_rows'|'insert_cols', at, count},
   * {kind: 'delete_rows'|'delete_cols', positions, ids} (positions before the delete, ascending; the
   * ids deleted), {kind: 'rename', name}, or for a batch (an undo or redo) {kind: 'batch', effects}:
   * each of its steps' effects, in order, each as the workbook was after the steps before it.
   */
  apply(change) {
    if (change.rev !== this.rev + 1) throw new Error(`change ${change.rev} does not follow revision ${this.rev}`);
    const effect = change.kind === "batch" ? { kind: "batch", effects: change.steps.map((step) => this.#applyKind(step)) } : this.#applyKind(change);
    this.rev = change.rev;
    return effect;
  }

  #applyKind(change) {
    switch (change.kind) {
      case "set": {
        const applied = [];
        for (const cell of change.cells) {
          if (!this.hasRow(cell.rowId) || !this.hasCol(cell.colId)) continue;
          if (cell.value === null || cell.value === undefined) this.cells.get(cell.rowId)?.delete(cell.colId);
          else this.#put(cell.rowId, cell.colId, cell.value);
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
        for (const id of gone) this.cells.delete(id);
        this.#reindex();
        return { kind: "delete_rows", positions, ids: change.ids };
      }
      case "delete_cols": {
        const gone = new Set(change.ids);
        const positions = this.#positions(this.colIndex, gone);
        this.colIds = this.colIds.filter((id) => !gone.has(id));
        for (const row of this.cells.values()) for (const id of gone) row.delete(id);
        this.titles = this.colIds.map((_, i) => columnTitle(i));
        this.#reindex();
        return { kind: "delete_cols", positions, ids: change.ids };
      }
      case "rename":
        this.name = change.name;
        return { kind: "rename", name: change.name };
      default:
        return { kind: "unknown" };
    }
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
