// Function names suggested while a formula is typed, in the formula bar and in a cell's editor, as
// spreadsheets do: the functions whose names start with the word being typed, each with its
// arguments; Up and Down pick one, Tab or Enter puts "NAME(" in place of the word, Escape closes the list.

const MOST = 8;
// The word at the cursor, where a function name can start: after "=", an operator, "(" or ",".
const WORD = /(?:^=|[=(,+\-*/^&<>:;%\s])([A-Za-z_][A-Za-z0-9._]*)$/;

/** The function-name word before `cursor` in a formula's text: {start, prefix}, or null. */
export function wordAt(text, cursor) {
  if (!text.startsWith("=")) return null;
  const before = text.slice(0, cursor);
  if ((before.match(/"/g) || []).length % 2) return null; // inside a text constant
  const found = WORD.exec(before);
  return found ? { start: cursor - found[1].length, prefix: found[1].toUpperCase() } : null;
}

export class Suggestions {
  /** functions: [[name, arguments]] (the page's config); list: an empty <ul> the suggestions go in. */
  constructor(functions, list) {
    this.functions = functions;
    this.list = list;
    this.list.setAttribute("role", "listbox");
    this.list.hidden = true;
    this.matches = [];
    this.active = 0;
    this.field = null;
    this.word = null;
    // A click picks a suggestion (mousedown: before the field loses the keyboard).
    this.list.addEventListener("mousedown", (event) => {
      const item = event.target.closest("[data-index]");
      if (!item) return;
      event.preventDefault();
      this.active = Number(item.dataset.index);
      this.accept();
    });
  }

  get open() {
    return !this.list.hidden;
  }

  /** Looks at the word being typed in `field` (an input or textarea) and shows what matches it. */
  update(field) {
    this.field = field;
    this.word = field.selectionStart === field.selectionEnd ? wordAt(field.value, field.selectionStart) : null;
    const prefix = this.word?.prefix;
    this.matches = prefix ? this.functions.filter(([name]) => name.startsWith(prefix) && name !== prefix).slice(0, MOST) : [];
    this.active = 0;
    this.render();
  }

  render() {
    this.list.replaceChildren(
      ...this.matches.map(([name, args], i) => {
        const item = document.createElement("li");
        item.setAttribute("role", "option");
        item.dataset.index = String(i);
        item.id = `${this.list.id}-${i}`;
        item.setAttribute("aria-selected", String(i === this.active));
        const strong = document.createElement("strong");
        strong.textContent = name;
        item.append(strong, `(${args})`);
        return item;
      }),
    );
    this.list.hidden = this.matches.length === 0;
    if (this.field) {
      if (this.open) this.field.setAttribute("aria-activedescendant", `${this.list.id}-${this.active}`);
      else this.field.removeAttribute("aria-activedescendant");
      if (this.open) this.place();
    }
  }

  /** Puts the list under the field (fixed, so that it shows over the grid whatever scrolls). */
  place() {
    const box = this.field.getBoundingClientRect();
    this.list.style.left = `${Math.round(box.left)}px`;
    this.list.style.top = `${Math.round(box.bottom + 2)}px`;
  }

  move(by) {
    if (!this.open) return;
    this.active = (this.active + by + this.matches.length) % this.matches.length;
    this.render();
  }

  close() {
    this.matches = [];
    this.render();
  }

  /** Puts the active suggestion in place of the word: "=SU" becomes "=SUM(". */
  accept() {
    if (!this.open || !this.word) return;
    const [name] = this.matches[this.active];
    const { value } = this.field;
    const end = this.field.selectionStart;
    const text = `${name}(`;
    this.field.value = value.slice(0, this.word.start) + text + value.slice(end);
    const cursor = this.word.start + text.length;
    this.field.setSelectionRange(cursor, cursor);
    this.field.dispatchEvent(new Event("input", { bubbles: true }));
    this.close();
  }

  /** Handles a key while the list is open; true when it was the list's (the field must not act on it). */
  key(event) {
    if (!this.open) return false;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") this.move(event.key === "ArrowDown" ? 1 : -1);
    else if (event.key === "Tab" || event.key === "Enter") this.accept();
    else if (event.key === "Escape") this.close();
    else return false;
    return true;
  }
}
