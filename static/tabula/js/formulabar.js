// The formula bar above the grid, as in every spreadsheet: the selected cell's name, and what it holds
// (a formula's text, else the text its editor opens with), edited in place: Enter writes it to the cell
// (as typing in the cell would) and goes back to the grid, Escape gives up. Function names are
// suggested while a formula is typed.

import { Suggestions } from "./suggest.js";

export class FormulaBar {
  /**
   * elements: {name (the cell's name), input, suggestions (an empty <ul>)}.
   * host: functions ([[name, arguments]]), commit(text) (write it to the selected cell), done() (give
   * the keyboard back to the grid), canEdit(), typed(input or null) (what is typed changed, or the
   * bar lost the keyboard: its references are coloured on the grid, a click there points at a cell).
   */
  constructor(elements, host) {
    this.name = elements.name;
    this.input = elements.input;
    this.host = host;
    this.shown = "";
    this.suggestions = new Suggestions(host.functions, elements.suggestions);
    this.input.addEventListener("input", () => {
      this.suggestions.update(this.input);
      host.typed(this.input);
    });
    for (const kind of ["focus", "keyup", "click"]) this.input.addEventListener(kind, () => host.typed(this.input));
    this.input.addEventListener("keydown", (event) => {
      host.typed(this.input); // (before the grid's keys see the key: the bar has the keyboard)
      this.keydown(event);
    });
    this.input.addEventListener("blur", () => {
      this.suggestions.close();
      host.typed(null);
    });
  }

  /** Whether someone is changing the bar's text (then what it shows is left alone). */
  get editing() {
    return document.activeElement === this.input && this.input.value !== this.shown;
  }

  /** Shows a cell: its name ("B3", or "" for none) and what it holds, as text. */
  show(name, text) {
    this.name.textContent = name;
    this.input.readOnly = !this.host.canEdit() || !name;
    if (this.editing) return;
    this.shown = text;
    this.input.value = text;
  }

  /** Shows what is being typed in the cell's own editor, as spreadsheets mirror it. */
  mirror(text) {
    if (document.activeElement !== this.input) this.input.value = text;
  }

  keydown(event) {
    if (this.suggestions.key(event)) {
      event.preventDefault();
      return;
    }
    if (event.key === "Enter") {
      event.preventDefault();
      if (!this.input.readOnly && this.input.value !== this.shown) this.host.commit(this.input.value);
      this.shown = this.input.value;
      this.host.done({ moveDown: true });
    } else if (event.key === "Escape") {
      event.preventDefault();
      this.input.value = this.shown;
      this.host.done({ moveDown: false });
    }
  }
}
