// Handsontable wiring. The grid speaks positions (visual rows and columns, which equal the model's
// positions: no sorting or moving plugins); main.js turns them into ids. Handsontable never changes
// the structure on its own: rows and columns come and go only through the server's changes.

/* global Handsontable */

import { isError } from "./formulas.js";
import { editorText, shownText, typedValue } from "./input.js";

const REMOTE = "tabula.remote"; // the source of every change this module makes for the server's model
const NOT_USER_EDITS = new Set([REMOTE, "loadData", "updateData"]);
const MAX_INSERT = 1000;

function span(ranges, axis) {
  const [from, to] = axis === "row" ? ["top", "bottom"] : ["left", "right"];
  return { first: Math.min(...ranges.map((r) => r[from])), last: Math.max(...ranges.map((r) => r[to])) };
}

/** "1 row", "2 rows", "1,000 rows". */
export function plural(count, word) {
  return `${count.toLocaleString("en-US")} ${word}${count === 1 ? "" : "s"}`;
}

/**
 * Renders a value as a spreadsheet shows it: numbers to the right, TRUE and FALSE and errors centred,
 * an error by its code with what caused it as the cell's tooltip.
 */
function showValue(textRenderer, instance, td, row, col, prop, value, cellProperties) {
  textRenderer(instance, td, row, col, prop, shownText(value), cellProperties);
  td.classList.toggle("tabula-number", typeof value === "number");
  td.classList.toggle("tabula-boolean", typeof value === "boolean");
  const error = isError(value);
  td.classList.toggle("tabula-error", error);
  td.dataset.why = error ? (value.message ? `${value.error} ${value.message}` : value.error) : ""; // the tooltip's (see #decorate)
}

/** A block of cells as the clipboard's text holds it, to know a paste of what this grid copied. */
function textOf(data) {
  return data.map((row) => row.map((v) => (v === null || v === undefined ? "" : String(v))).join("\t")).join("\n");
}

const GRIDS = new WeakMap(); // Handsontable instance -> its Grid, for the editor

/**
 * The cell editor opens with the text that, typed again, gives the cell back: a formula cell's formula,
 * '42 for the text 42.
 */
class CellEditor extends Handsontable.editors.TextEditor {
  beginEditing(initial, event) {
    const grid = GRIDS.get(this.hot);
    if (typeof initial !== "string") initial = grid?.handlers.formulaAt?.(this.row, this.col) ?? editorText(this.originalValue);
    super.beginEditing(initial, event);
    // Function names suggested while a formula is typed (Grid's editor keys take the list's keys first),
    // and the references typed coloured on the grid.
    if (grid && !this.watching) {
      this.watching = true;
      // (The textarea also takes the grid's keys while no editor is open: those are not typing.)
      const typed = () => {
        if (!this.isOpened()) return;
        grid.suggestions?.update(this.TEXTAREA);
        grid.handlers.onFormulaTyped?.(this.TEXTAREA);
      };
      this.TEXTAREA.addEventListener("input", typed);
      this.TEXTAREA.addEventListener("keyup", () => this.isOpened() && grid.handlers.onFormulaTyped?.(this.TEXTAREA));
    }
    grid?.handlers.onFormulaTyped?.(this.TEXTAREA);
  }

  close() {
    const grid = GRIDS.get(this.hot);
    grid?.suggestions?.close();
    super.close();
    grid?.handlers.onFormulaTyped?.(null);
  }
}

export class Grid {
  /**
   * options: licenseKey, readOnly, titles (column headers), rows (arrays of values), maxValueChars,
   * shortcuts ({undo, redo}: the keys as the menu shows them).
   * handlers: onEdit([{row, col, value, old}]), onPaste({changes, beyond}) (changes as onEdit's, for
   * the cells inside the grid; beyond: [{row, col, value}] positions past its last row or column),
   * onStructure({kind, before, count} or {kind, positions}), onSelect([{top, left, bottom, right}]),
   * onEditorMaybeClosed(), onTooLong(length) (typed text over the limit: the editor stays open with it),
   * onHistory("undo" | "redo") (the keys or the menu, never while a cell's editor is open),
   * onCellHistory({row, col}) (the menu's "Show edit history": the active cell's position),
   * onSheetStep(1 | -1) (Alt + Down or Up: the next or previous sheet, as in Google Sheets),
   * formulaAt(row, col) (the A1 text of the formula at that position, or null: what its editor opens with),
   * formulaMoved(fromRow, fromCol, toRow, toCol) (the formula at a position as copied to another, {formula}, or
   * null when none is there: a copy and paste, or the fill handle, moves formulas as spreadsheets do).
   * options.suggestions: the Suggestions (suggest.js) a cell's editor shows while a formula is typed.
   * onFormulaTyped(field or null) (a cell's editor's text changed, or it closed), pointingField() (the
   * field a click on the grid points from, while a formula is typed there: see formulas.js's Pointer),
   * onPoint(field, row, col, extend) (a cell clicked, or dragged over, while pointing).
   */
  constructor(container, options, handlers) {
    standInForCoreStyles();
    this.handlers = handlers;
    this.shortcuts = options.shortcuts || { undo: "", redo: "" };
    this.titles = options.titles;
    this.highlights = [];
    this.references = []; // the references of the formula being typed, coloured: [{top, left, bottom, right, color}]
    this.pointing = null; // the field a drag over the grid points from
    this.readOnly = options.readOnly;
    this.suggestions = options.suggestions || null;
    const textRenderer = Handsontable.renderers.getRenderer("text");
    const grid = this;
    this.hot = new Handsontable(container, {
      data: options.rows,
      licenseKey: options.licenseKey,
      themeName: "ht-theme-main",
      injectCoreCss: false, // see standInForCoreStyles
      width: "100%",
      height: "100%",
      rowHeaders: true,
      colHeaders: (index) => grid.titles[index] ?? "",
      readOnly: options.readOnly,
      contextMenu: this.#contextMenu(options.readOnly),
      fillHandle: !options.readOnly,
      undo: false, // an undo stack would replay other people's changes; the server's log is the history
      copyPaste: { rowsLimit: 100000, columnsLimit: 1000 },
      outsideClickDeselects: false,
      // Arrow keys, Tab and Enter stop at the workbook's edges, as in every spreadsheet.
      autoWrapRow: false,
      autoWrapCol: false,
      // Typed text over the limit keeps the editor open with the text, instead of being thrown away.
      validator: (value, callback) => callback(!(typeof value === "string" && value.length > options.maxValueChars)),
      allowInvalid: false,
      afterValidate: (valid, value) => {
        if (!valid) this.handlers.onTooLong(value.length);
      },
      manualColumnResize: true,
      colWidths: 100,
      renderer(instance, td, row, col, prop, value, cellProperties) {
        showValue(textRenderer, instance, td, row, col, prop, value, cellProperties);
        grid.#decorate(td, row, col);
      },
      editor: CellEditor,
      beforeCreateRow: (index, amount, source) => source === REMOTE,
      beforeCreateCol: (index, amount, source) => source === REMOTE,
      beforeRemoveRow: (index, amount, physicalRows, source) => source === REMOTE,
      beforeRemoveCol: (index, amount, physicalCols, source) => source === REMOTE,
      beforePaste: (data) => this.#paste(data),
      beforeChange: (changes, source) => {
        if (NOT_USER_EDITS.has(source)) return true;
        if (this.readOnly) return false;
        // Typed text is read as a spreadsheet reads it (a number, a boolean, 'text); an emptied cell
        // holds null, as the model does (and as the wire clears a cell). A fill copies values as they are.
        for (const change of changes) {
          if (change && source === "edit") change[3] = typedValue(change[3]);
          else if (change && change[3] === "") change[3] = null;
        }
        return true;
      },
      afterChange: (changes, source) => {
        if (changes && !NOT_USER_EDITS.has(source)) {
          this.handlers.onEdit(changes.map(([row, col, old, value]) => ({ row, col, old, value })));
        }
        this.handlers.onEditorMaybeClosed();
      },
      afterSelectionEnd: () => {
        this.handlers.onSelect(this.selectionRanges());
        this.handlers.onEditorMaybeClosed();
      },
      afterDeselect: () => {
        this.handlers.onSelect([]);
        this.handlers.onEditorMaybeClosed();
      },
      afterDocumentKeyDown: () => this.handlers.onEditorMaybeClosed(),
      // Copied cells go out as they show: computed values, errors by their codes. Where they came from
      // is kept, so that pasting them here pastes their formulas, moved (see #paste).
      beforeCopy: (data, coords) => {
        for (const row of data) for (let i = 0; i < row.length; i++) if (row[i] !== null && typeof row[i] === "object") row[i] = shownText(row[i]);
        this.copied = coords.length === 1 ? { top: coords[0].startRow, left: coords[0].startCol, text: textOf(data) } : null;
      },
      beforeAutofill: (data, source, target) => this.#fill(data, source, target),
      beforeOnCellMouseDown: (event, coords) => this.#point(event, coords, false),
      beforeOnCellMouseOver: (event, coords) => this.#point(event, coords, true),
      // The end of a click that pointed from the formula bar: the grid does not take the keyboard.
      beforeOnCellMouseUp: (event) => {
        if (this.pointing && !this.hot.rootElement.contains(this.pointing)) Handsontable.dom.stopImmediatePropagation(event);
      },
    });
    GRIDS.set(this.hot, this);
    this.#registerDataEdgeKeys();
    this.#registerSuggestionKeys();
    this.#registerHistoryKeys();
    this.#registerSheetKeys();
  }

  /**
   * Undo and redo keys while the grid has the keyboard and no editor is open (inside one, the
   * browser's own undo of the text typed): Ctrl (Cmd) + Z undoes; Ctrl + Y, Ctrl + Shift + Z and
   * Cmd + Shift + Z redo. Handsontable's own undo is off; these keys do nothing else in the grid.
   */
  #registerHistoryKeys() {
    const context = this.hot.getShortcutManager().getContext("grid");
    const run = (kind) => () => {
      if (!this.readOnly) this.handlers.onHistory(kind);
      return false;
    };
    context.addShortcuts(
      [
        { keys: [["Control/Meta", "z"]], captureCtrl: true, callback: run("undo") },
        { keys: [["Control/Meta", "Shift", "z"], ["Control/Meta", "y"]], captureCtrl: true, callback: run("redo") },
      ],
      { group: "tabula.history", runOnlyIf: () => !this.editingCell() },
    );
  }

  /** While the editor's list of function names is open, its keys are the list's: Up, Down, Tab, Enter, Escape. */
  #registerSuggestionKeys() {
    if (!this.suggestions) return;
    const context = this.hot.getShortcutManager().getContext("editor");
    const keys = ["ArrowUp", "ArrowDown", "Tab", "Enter", "Escape"];
    context.addShortcuts(
      keys.map((key) => ({ keys: [[key]], callback: (event) => !this.suggestions.key(event) })),
      { group: "tabula.suggestions", runOnlyIf: () => this.suggestions.open, position: "before", relativeToGroup: "editorManager.handlingEditor" },
    );
  }

  /**
   * A click on a cell while a formula is typed (in the bar, or in a cell's editor, after an operator):
   * the cell's reference goes into the formula, the selection and the editor stay; a drag makes it a range.
   */
  #point(event, coords, over) {
    if (coords.row < 0 || coords.col < 0) return;
    const field = over ? this.pointing : this.handlers.pointingField?.();
    if (!field || (over && !(event.buttons & 1))) {
      if (over) this.pointing = null;
      return;
    }
    event.preventDefault(); // the field keeps the keyboard
    Handsontable.dom.stopImmediatePropagation(event); // and the selection stays where it is
    this.pointing = field;
    this.handlers.onPoint(field, coords.row, coords.col, over);
    if (!this.hot.rootElement.contains(field)) this.hot.unlisten(); // typing goes on in the field, not the grid
    if (!over) {
      const done = () => {
        this.pointing = null;
        window.removeEventListener("mouseup", done);
      };
      window.addEventListener("mouseup", done);
    }
    field.focus();
  }

  /** Colours the references of the formula being typed: [{top, left, bottom, right, color}] (positions). */
  setReferences(references) {
    this.references = references;
    this.hot.render();
  }

  /** The active cell (where typing goes), {row, col}, or null when nothing is selected. */
  activeCell() {
    const range = this.hot.getSelectedRangeLast();
    return range ? { row: range.highlight.row, col: range.highlight.col } : null;
  }

  /** Selects one cell and gives the grid the keyboard. */
  selectCell(row, col) {
    const [rows, cols] = [this.hot.countRows(), this.hot.countCols()];
    if (!rows || !cols) return;
    this.hot.selectCell(Math.max(0, Math.min(rows - 1, row)), Math.max(0, Math.min(cols - 1, col)));
    this.hot.listen();
  }

  /** Alt + Down (Up): the next (previous) sheet, without leaving the grid; never while a cell's editor is open. */
  #registerSheetKeys() {
    const context = this.hot.getShortcutManager().getContext("grid");
    const step = (by) => () => {
      this.handlers.onSheetStep(by);
      return false;
    };
    context.addShortcuts(
      [
        { keys: [["Alt", "ArrowDown"]], callback: step(1) },
        { keys: [["Alt", "ArrowUp"]], callback: step(-1) },
      ],
      { group: "tabula.sheets", runOnlyIf: () => !this.editingCell() },
    );
  }

  /** Gives the keyboard back to the grid (after a click on a control beside it). */
  listen() {
    if (this.hot.getSelectedRangeActive()) this.hot.listen();
  }

  /** Leaves the keyboard to a control beside the grid that took the focus (its Enter is not the grid's). */
  unlisten() {
    this.hot.unlisten();
  }

  /** Ctrl (Cmd) + arrow, with or without Shift, ahead of Handsontable's own (which goes to the workbook's edge). */
  #registerDataEdgeKeys() {
    const context = this.hot.getShortcutManager().getContext("grid");
    const shortcuts = [];
    for (const key of ["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight"]) {
      for (const extend of [false, true]) {
        shortcuts.push({
          keys: [extend ? [key, "Shift", "Control/Meta"] : [key, "Control/Meta"]],
          captureCtrl: true,
          callback: () => {
            this.#jumpToDataEdge(key, extend);
            return false; // Handsontable's own shortcut for these keys does not run
          },
        });
      }
    }
    context.addShortcuts(shortcuts, { group: "tabula.dataEdge", relativeToGroup: "gridDefault", position: "before", runOnlyIf: () => this.hot.getSelectedRangeActive() !== undefined });
  }

  /**
   * A paste, done here instead of by Handsontable (returns false to stop its own). Its paste runs
   * every cell through its change pipeline before the edit can leave (0.15-0.3 s for 10,000 cells),
   * and keeps the page busy after it. The cells are Handsontable's: from the active selection's top-left
   * corner, the block repeated over a larger selection, cut at the grid's edges (rows and columns
   * come only from the server). They go into the grid's data, out as one edit, then on screen,
   * selected as Handsontable would.
   */
  #paste(data) {
    const range = this.hot.getSelectedRangeActive();
    if (this.readOnly || !range || !data.length || !data[0].length) return false;
    const { row: top, col: left } = range.getTopStartCorner();
    const { row: bottom, col: right } = range.getBottomEndCorner();
    const width = data[0].length;
    const lastRow = top + Math.max(data.length, bottom - top + 1) - 1;
    const lastCol = left + Math.max(width, right - left + 1) - 1;
    const [rowCount, colCount] = [this.hot.countRows(), this.hot.countCols()];
    const rows = this.hot.getSettings().data;
    const changes = [];
    const beyond = [];
    // What this grid copied comes back with its formulas, moved as far as the paste is from the copy.
    const copied = this.copied && this.copied.text === textOf(data) ? this.copied : null;
    for (let row = top; row <= lastRow; row += 1) {
      const pasted = data[(row - top) % data.length];
      for (let col = left; col <= lastCol; col += 1) {
        const [fromRow, fromCol] = copied ? [copied.top + ((row - top) % data.length), copied.left + ((col - left) % width)] : [];
        const value = (copied && this.handlers.formulaMoved?.(fromRow, fromCol, row, col)) || typedValue(pasted[(col - left) % width]);
        if (row >= rowCount || col >= colCount) {
          if (value !== null) beyond.push({ row, col, value }); // the workbook grows to take it
          continue;
        }
        changes.push({ row, col, old: rows[row][col], value });
        rows[row][col] = value;
      }
    }
    this.handlers.onPaste({ changes, beyond });
    this.hot.batchRender(() => {
      this.hot.render();
      this.hot.selectCell(top, left, Math.min(rowCount - 1, lastRow), Math.min(colCount - 1, lastCol));
    });
    return false;
  }

  /**
   * The fill handle over formulas: each cell filled gets the formula of the cell it repeats, moved as
   * far (=A1*2 filled down gives =A2*2; $A$1 stays), and literals as they are; one edit. Without a
   * formula in the cells filled from, Handsontable fills as it does (`data` back).
   */
  #fill(data, source, target) {
    const [s, t] = [source, target].map((range) => ({ top: range.getTopStartCorner().row, left: range.getTopStartCorner().col, bottom: range.getBottomEndCorner().row, right: range.getBottomEndCorner().col }));
    const [height, width] = [s.bottom - s.top + 1, s.right - s.left + 1];
    const formulas = this.handlers.formulaMoved;
    let any = false;
    for (let row = s.top; row <= s.bottom && !any; row += 1) for (let col = s.left; col <= s.right && !any; col += 1) any = Boolean(formulas?.(row, col, row, col));
    if (!any) return data;
    const rows = this.hot.getSettings().data;
    const wrap = (n, size) => ((n % size) + size) % size;
    const changes = [];
    for (let row = t.top; row <= t.bottom; row += 1) {
      for (let col = t.left; col <= t.right; col += 1) {
        const [fromRow, fromCol] = [s.top + wrap(row - s.top, height), s.left + wrap(col - s.left, width)];
        const value = formulas(fromRow, fromCol, row, col) ?? rows[fromRow][fromCol];
        changes.push({ row, col, old: rows[row][col], value });
        rows[row][col] = value;
      }
    }
    this.handlers.onPaste({ changes, beyond: [] });
    this.hot.render();
    return false;
  }

  /**
   * Ctrl (Cmd) + arrow, with Shift to extend the selection: to the edge of the data, as spreadsheets
   * do: from a filled cell whose neighbour is filled, to the last filled cell of that run; otherwise
   * to the next filled cell; with none, to the workbook's edge. Handsontable's own goes to the workbook's edge.
   */
  #jumpToDataEdge(key, extend) {
    const step = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] }[key];
    const selected = this.hot.getSelectedRangeActive();
    if (!selected) return;
    const rows = this.hot.getSettings().data;
    const [rowCount, colCount] = [this.hot.countRows(), this.hot.countCols()];
    const filled = (r, c) => rows[r][c] !== null && rows[r][c] !== undefined && rows[r][c] !== "";
    // With Shift the moving corner is the one away from the active cell; without, the active cell.
    const from = extend ? selected.to : selected.highlight;
    let [r, c] = [Math.max(0, from.row), Math.max(0, from.col)];
    const [dr, dc] = step;
    const inside = (rr, cc) => rr >= 0 && cc >= 0 && rr < rowCount && cc < colCount;
    if (!inside(r + dr, c + dc)) {
      // already at the edge
    } else if (filled(r, c) && filled(r + dr, c + dc)) {
      while (inside(r + dr, c + dc) && filled(r + dr, c + dc)) [r, c] = [r + dr, c + dc];
    } else {
      [r, c] = [r + dr, c + dc];
      while (inside(r + dr, c + dc) && !filled(r, c)) [r, c] = [r + dr, c + dc];
    }
    if (extend) this.hot.selectCell(selected.highlight.row, selected.highlight.col, r, c, true);
    else this.hot.selectCell(r, c);
  }

  // ---------------------------------------------------------------- menus

  #contextMenu(readOnly) {
    // Everyone may read a cell's history (the active cell: the one right-clicked, or the selection's own).
    const activeCell = () => {
      const at = this.hot.getSelectedRangeActive()?.highlight;
      return at && at.row >= 0 && at.col >= 0 ? { row: at.row, col: at.col } : null;
    };
    const cellHistory = {
      name: "Show edit history",
      callback: () => {
        const at = activeCell();
        if (at) this.handlers.onCellHistory(at);
      },
      disabled: () => !activeCell(),
    };
    if (readOnly) return { items: { copy: {}, tabula_sep_history: "---------", tabula_cell_history: cellHistory } };
    const selected = () => this.selectionRanges();
    const rowsLabel = (where) => () => {
      const s = span(selected(), "row");
      return `Insert ${plural(Math.min(MAX_INSERT, s.last - s.first + 1), "row")} ${where}`;
    };
    const colsLabel = (where) => () => {
      const s = span(selected(), "col");
      return `Insert ${plural(Math.min(MAX_INSERT, s.last - s.first + 1), "column")} ${where}`;
    };
    const none = () => selected().length === 0;
    const insert = (axis, after) => () => {
      const s = span(selected(), axis);
      const count = Math.min(MAX_INSERT, s.last - s.first + 1);
      this.handlers.onStructure({ kind: axis === "row" ? "insert_rows" : "insert_cols", before: after ? s.last + 1 : s.first, count });
    };
    const remove = (axis) => () => {
      const positions = new Set();
      for (const r of selected()) {
        const [from, to] = axis === "row" ? [r.top, r.bottom] : [r.left, r.right];
        for (let p = from; p <= to; p += 1) positions.add(p);
      }
      this.handlers.onStructure({ kind: axis === "row" ? "delete_rows" : "delete_cols", positions: [...positions].sort((a, b) => a - b) });
    };
    const removeLabel = (axis, word) => () => {
      const count = new Set(selected().flatMap((r) => {
        const [from, to] = axis === "row" ? [r.top, r.bottom] : [r.left, r.right];
        return Array.from({ length: to - from + 1 }, (_, i) => from + i);
      })).size;
      return `Delete ${plural(count, word)}`;
    };
    const history = (kind, label) => ({
      name: label,
      callback: () => this.handlers.onHistory(kind),
      // The label, and the keys at the end of the line, as text.
      renderer: (menu, wrapper) => {
        const name = document.createElement("span");
        name.textContent = label;
        const keys = document.createElement("kbd");
        keys.className = "menu-keys";
        keys.textContent = this.shortcuts[kind];
        wrapper.classList.add("menu-item");
        wrapper.replaceChildren(name, keys);
        return document.createDocumentFragment();
      },
    });
    return {
      items: {
        tabula_undo: history("undo", "Undo"),
        tabula_redo: history("redo", "Redo"),
        tabula_sep0: "---------",
        tabula_row_above: { name: rowsLabel("above"), callback: insert("row", false), disabled: none },
        tabula_row_below: { name: rowsLabel("below"), callback: insert("row", true), disabled: none },
        tabula_sep1: "---------",
        tabula_col_left: { name: colsLabel("left"), callback: insert("col", false), disabled: none },
        tabula_col_right: { name: colsLabel("right"), callback: insert("col", true), disabled: none },
        tabula_sep2: "---------",
        tabula_remove_row: { name: removeLabel("row", "row"), callback: remove("row"), disabled: none },
        tabula_remove_col: { name: removeLabel("col", "column"), callback: remove("col"), disabled: none },
        tabula_sep3: "---------",
        copy: {},
        cut: {},
        tabula_sep4: "---------",
        tabula_cell_history: cellHistory,
      },
    };
  }

  // ---------------------------------------------------------------- reading

  /** The selected ranges as [{top, left, bottom, right}] positions (header clicks clamp to the cells). */
  selectionRanges() {
    const ranges = this.hot.getSelectedRange() || [];
    const rows = this.hot.countRows();
    const cols = this.hot.countCols();
    const out = [];
    for (const range of ranges) {
      const tl = range.getTopStartCorner();
      const br = range.getBottomEndCorner();
      const r = {
        top: Math.max(0, tl.row),
        left: Math.max(0, tl.col),
        bottom: Math.min(rows - 1, br.row),
        right: Math.min(cols - 1, br.col),
      };
      if (r.top <= r.bottom && r.left <= r.right) out.push(r);
    }
    return out;
  }

  /** The cell whose editor is open, {row, col}, or null. */
  editingCell() {
    const editor = this.hot.getActiveEditor();
    return editor && editor.isOpened() ? { row: editor.row, col: editor.col } : null;
  }

  /** Every value shown, rows of columns. */
  data() {
    return this.hot.getData();
  }

  /** Closes an open editor, keeping what it holds (as a click elsewhere would). */
  closeEditor() {
    const editor = this.hot.getActiveEditor();
    if (editor && editor.isOpened()) editor.finishEditing();
  }

  /** Closes an open editor and drops what it holds (its cell is gone: its sheet was deleted). */
  cancelEditor() {
    const editor = this.hot.getActiveEditor();
    if (editor && editor.isOpened()) editor.finishEditing(true);
  }

  /**
   * Selects ranges [{top, left, bottom, right}] of positions, cut to the grid (the first cell when none
   * is left), scrolled into view. `listen`: the grid takes the keyboard.
   */
  select(ranges, { listen }) {
    const [rows, cols] = [this.hot.countRows(), this.hot.countCols()];
    if (!rows || !cols) return;
    const clamp = (p, count) => Math.max(0, Math.min(count - 1, p));
    const cut = ranges
      .filter((r) => r.top < rows && r.left < cols)
      .map((r) => [clamp(r.top, rows), clamp(r.left, cols), clamp(r.bottom, rows), clamp(r.right, cols)]);
    this.hot.selectCells(cut.length ? cut : [[0, 0, 0, 0]], true, listen);
  }

  /** Fits the grid to its container again after the space around it changed (a side panel came or went). */
  refreshSize() {
    this.hot.refreshDimensions();
  }

  // ---------------------------------------------------------------- changing

  /** Runs fn with rendering held back, then draws once. */
  batch(fn) {
    this.hot.batchRender(fn);
  }

  /** Replaces the whole grid (a first load or a reload). */
  load(rows, titles) {
    this.titles = titles;
    this.hot.loadData(rows);
  }

  /**
   * Shows new values: cells are [row, col, value] positions. They go straight into the rows
   * Handsontable draws from (its data, by reference; rows and columns come and go in place), then
   * one render: setDataAtCell runs its change pipeline cell by cell, 0.1-0.35 s for a 10,000-cell
   * paste against 0.03 s this way. Positions are physical ones here: no sorting, moving or hiding.
   */
  setCells(cells) {
    if (!cells.length) return;
    const rows = this.hot.getSettings().data;
    for (const [row, col, value] of cells) rows[row][col] = value;
    this.hot.render();
  }

  // Handsontable moves the selection, and an open editor with it, when rows or columns come and go.

  insertRows(at, count) {
    const rows = this.hot.countRows();
    if (at >= rows && rows > 0) this.hot.alter("insert_row_below", rows - 1, count, REMOTE);
    else this.hot.alter("insert_row_above", at, count, REMOTE);
  }

  removeRows(positions) {
    this.hot.alter("remove_row", runs(positions), undefined, REMOTE);
  }

  insertCols(at, count, titles) {
    this.titles = titles;
    const cols = this.hot.countCols();
    if (at >= cols && cols > 0) this.hot.alter("insert_col_end", cols - 1, count, REMOTE);
    else this.hot.alter("insert_col_start", at, count, REMOTE);
  }

  removeCols(positions, titles) {
    this.titles = titles;
    this.hot.alter("remove_col", runs(positions), undefined, REMOTE);
  }

  setReadOnly(readOnly) {
    this.readOnly = readOnly;
    this.hot.updateSettings({ readOnly, contextMenu: this.#contextMenu(readOnly), fillHandle: !readOnly });
  }

  /** Others' selections to draw: [{top, left, bottom, right, color, name}] positions. */
  setHighlights(rectangles) {
    this.highlights = rectangles;
    this.hot.render();
  }

  #decorate(td, row, col) {
    const shadows = [];
    let fill = null;
    const names = [];
    for (const r of [...this.highlights, ...this.references]) {
      if (row < r.top || row > r.bottom || col < r.left || col > r.right) continue;
      fill = r.color;
      if (r.name) names.push(r.name);
      if (row === r.top) shadows.push(`inset 0 2px 0 0 ${r.color}`);
      if (row === r.bottom) shadows.push(`inset 0 -2px 0 0 ${r.color}`);
      if (col === r.left) shadows.push(`inset 2px 0 0 0 ${r.color}`);
      if (col === r.right) shadows.push(`inset -2px 0 0 0 ${r.color}`);
    }
    td.style.boxShadow = shadows.join(", ");
    td.style.backgroundColor = fill ? `color-mix(in srgb, ${fill} 12%, transparent)` : "";
    td.classList.toggle("remote-selection", names.length > 0);
    const tooltip = [td.dataset.why, names.length ? `Selected by ${[...new Set(names)].join(", ")}` : ""].filter(Boolean).join("\n");
    if (tooltip) td.title = tooltip;
    else td.removeAttribute("title");
  }
}

/**
 * The workbook as it was at an earlier revision, read-only, in a Handsontable of its own over the live
 * grid's place. Nothing of the live workbook passes through it: the live grid goes on showing the model
 * with the pending edits laid over it underneath (hidden), so leaving the past is just this one going.
 * Copying cells out of it works as in the live grid.
 */
export class PastGrid {
  /** options: licenseKey, titles (column headers), rows (arrays of values). */
  constructor(container, options) {
    standInForCoreStyles();
    this.titles = options.titles;
    const grid = this;
    this.hot = new Handsontable(container, {
      data: options.rows,
      licenseKey: options.licenseKey,
      themeName: "ht-theme-main",
      injectCoreCss: false,
      width: "100%",
      height: "100%",
      rowHeaders: true,
      colHeaders: (index) => grid.titles[index] ?? "",
      readOnly: true,
      renderer: (instance, td, row, col, prop, value, cellProperties) => {
        showValue(Handsontable.renderers.getRenderer("text"), instance, td, row, col, prop, value, cellProperties);
        if (td.dataset.why) td.title = td.dataset.why;
        else td.removeAttribute("title");
      },
      contextMenu: { items: { copy: {} } },
      fillHandle: false,
      undo: false,
      copyPaste: { rowsLimit: 100000, columnsLimit: 1000 },
      outsideClickDeselects: false,
      autoWrapRow: false,
      autoWrapCol: false,
      manualColumnResize: true,
      colWidths: 100,
      beforeCreateRow: () => false,
      beforeCreateCol: () => false,
      beforeRemoveRow: () => false,
      beforeRemoveCol: () => false,
      beforePaste: () => false,
      beforeChange: (changes, source) => source === "loadData",
    });
  }

  /** Shows another revision's rows. */
  load(rows, titles) {
    this.titles = titles;
    this.hot.loadData(rows);
  }

  /** Every value shown, rows of columns. */
  data() {
    return this.hot.getData();
  }

  refreshSize() {
    this.hot.refreshDimensions();
  }

  destroy() {
    this.hot.destroy();
  }
}

/** Ascending positions as Handsontable's [[index, amount], ...] runs. */
function runs(positions) {
  const out = [];
  for (const p of positions) {
    const last = out[out.length - 1];
    if (last && last[0] + last[1] === p) last[1] += 1;
    else out.push([p, 1]);
  }
  return out;
}

/**
 * The page links handsontable.min.css. Each Handsontable table (the grid, and the context menu, which
 * is a table of its own) would otherwise put the same rules in an inline <style>, which the page's
 * Content-Security-Policy refuses; it skips that when an element with this id is there.
 */
function standInForCoreStyles() {
  if (document.getElementById("handsontable-core-styles")) return;
  const placeholder = document.createElement("style");
  placeholder.id = "handsontable-core-styles";
  document.head.append(placeholder);
}
