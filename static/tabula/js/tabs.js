// The sheet tabs along the bottom of the grid, as in a spreadsheet: one tab per sheet, the one shown
// highlighted; "+" adds a sheet; a double-click (or F2) renames a tab in place; a tab is dragged to
// another place; a right-click (or the keyboard's menu key, or Shift+F10) opens its menu. What is
// asked goes to the host (main.js), which sends the operations; the bar only draws the tabs it is given.
//
// The tabs are a WAI-ARIA tab list: arrow keys, Home and End move between them, Enter or Space shows
// one. Tab elements are kept from one drawing to the next (matched by sheet), so a click and the
// double-click that follows it land on the same element even when the first one switched sheets.

import { MAX_NAME_CHARS } from "./sheets.js";

const keyOf = (tab) => (tab.id === null ? `new:${tab.op}` : `sheet:${tab.id}`);

export class TabBar {
  /**
   * elements: {list (the role=tablist element), add (the "+" button), menu (an empty element for the
   * tab menu), panel (the role=tabpanel element the tabs show)}.
   * host: show(id, {pointer}) (a tab was chosen: with the pointer, the grid takes the keyboard), add(),
   * rename(id, name) (returns why the name cannot be taken, or null once it is sent), duplicate(id),
   * move(id, before) (before: a sheet id, or null for the end), remove(id) (asks first), keyboardLeft()
   * (a control of the bar took the keyboard: the grid lets it go), keyboardBack() (the grid takes the
   * keyboard again: a rename or a menu the mouse began is over, as a spreadsheet does).
   */
  constructor(elements, host) {
    this.list = elements.list;
    this.addButton = elements.add;
    this.menu = elements.menu;
    this.panel = elements.panel;
    this.host = host;
    this.tabs = [];
    this.shownId = null;
    this.canEdit = false;
    this.elements = new Map(); // key -> the tab's button
    this.renaming = null; // {id, input, tab}
    this.dragging = null; // the id of the sheet being dragged
    this.menuFor = null; // the id whose menu is open
    this.menuByPointer = false; // opened with the mouse: once it closes, the grid has the keyboard again
    this.menuKey = false; // the last key pressed on a tab opens its menu
    this.stale = false; // a drawing waits for a rename or a drag to end
    this.lastShown = null;
    this.#listen();
  }

  /** tabs: [{id, name, pending, op?}] in order (sheets.tabsShown); shownId: the sheet shown; canEdit: tabs can be changed. */
  draw(tabs, shownId, { canEdit }) {
    this.tabs = tabs;
    this.shownId = shownId;
    this.canEdit = canEdit;
    this.addButton.hidden = !canEdit;
    if (this.renaming || this.dragging !== null) {
      this.stale = true;
      return;
    }
    this.stale = false;
    if (this.menuFor !== null && !tabs.some((t) => t.id === this.menuFor)) this.closeMenu({ refocus: false });
    this.#render();
  }

  #render() {
    const focused = [...this.elements.entries()].find(([, el]) => el === document.activeElement)?.[0];
    const keep = new Set();
    const elements = this.tabs.map((tab) => {
      const key = keyOf(tab);
      keep.add(key);
      let el = this.elements.get(key);
      if (!el) {
        el = document.createElement("button");
        el.type = "button";
        el.className = "sheet-tab";
        el.setAttribute("role", "tab");
        el.setAttribute("aria-controls", "grid-area");
        this.elements.set(key, el);
      }
      const shown = tab.id !== null && tab.id === this.shownId;
      if (el.textContent !== tab.name) el.textContent = tab.name;
      el.dataset.sheet = tab.id === null ? "" : String(tab.id);
      if (tab.id === null) el.removeAttribute("id");
      else el.id = `sheet-tab-${tab.id}`;
      el.setAttribute("aria-selected", String(shown));
      el.tabIndex = shown ? 0 : -1;
      el.classList.toggle("pending", tab.pending);
      el.title = tab.id === null ? `${tab.name} (being added)` : this.canEdit ? `${tab.name} — double-click to rename, right-click for more` : tab.name;
      if (tab.id === null) el.setAttribute("aria-disabled", "true");
      else el.removeAttribute("aria-disabled");
      el.draggable = this.canEdit && tab.id !== null;
      return el;
    });
    for (const [key, el] of this.elements) {
      if (keep.has(key)) continue;
      el.remove();
      this.elements.delete(key);
    }
    elements.forEach((el, i) => {
      if (this.list.children[i] !== el) this.list.insertBefore(el, this.list.children[i] ?? null);
    });
    // A tab that moved was taken out and put back: it keeps the keyboard it had.
    const back = focused !== undefined ? this.elements.get(focused) : null;
    if (back && document.activeElement !== back) back.focus();
    if (back) this.#rove(back);
    if (this.elements.has(`sheet:${this.shownId}`)) this.panel?.setAttribute("aria-labelledby", `sheet-tab-${this.shownId}`);
    if (this.shownId !== this.lastShown) {
      this.lastShown = this.shownId;
      this.elements.get(`sheet:${this.shownId}`)?.scrollIntoView({ block: "nearest", inline: "nearest" });
    }
  }

  /** The tab that has the keyboard is the one Tab comes back to (the roving tabindex of a tab list). */
  #rove(el) {
    for (const other of this.elements.values()) other.tabIndex = other === el ? 0 : -1;
  }

  #tabOf(target) {
    const el = target instanceof Element ? target.closest("[role=tab]") : null;
    if (!el || !this.list.contains(el)) return null;
    const id = el.dataset.sheet === "" ? null : Number(el.dataset.sheet);
    return { el, id, tab: this.tabs.find((t) => t.id === id && id !== null) };
  }

  #listen() {
    this.addButton.addEventListener("click", () => this.canEdit && this.host.add());
    this.list.addEventListener("focusin", () => this.host.keyboardLeft());
    this.addButton.addEventListener("focusin", () => this.host.keyboardLeft());
    this.list.addEventListener("click", (event) => {
      const found = this.#tabOf(event.target);
      if (!found || found.id === null) return;
      this.host.show(found.id, { pointer: event.detail > 0 });
    });
    this.list.addEventListener("dblclick", (event) => {
      const found = this.#tabOf(event.target);
      if (found?.tab && this.canEdit) this.startRename(found.id, { pointer: true });
    });
    this.list.addEventListener("keydown", (event) => this.#keydown(event));
    this.list.addEventListener("pointerdown", () => (this.menuKey = false));
    this.list.addEventListener("contextmenu", (event) => {
      const found = this.#tabOf(event.target);
      if (!found?.tab || !this.canEdit) return;
      event.preventDefault();
      // From the keyboard (the menu key, Shift+F10) the menu opens at the tab, and closing it gives the tab the keyboard back.
      const fromKeyboard = this.menuKey;
      this.menuKey = false;
      this.openMenu(found.id, fromKeyboard ? null : { x: event.clientX, y: event.clientY });
      this.menuByPointer = !fromKeyboard;
    });
    this.#listenForDrags();
    this.menu.addEventListener("keydown", (event) => this.#menuKeydown(event));
    this.menu.addEventListener("click", (event) => {
      const item = event.target instanceof Element ? event.target.closest("[role=menuitem]") : null;
      if (!item || item.getAttribute("aria-disabled") === "true") return;
      const [id, pointer] = [this.menuFor, this.menuByPointer];
      this.closeMenu({ refocus: true });
      this.#run(item.dataset.action, id, pointer);
    });
    document.addEventListener("pointerdown", (event) => {
      if (this.menuFor !== null && !this.menu.contains(event.target)) this.closeMenu({ refocus: false });
    }, true);
    this.menu.addEventListener("focusout", (event) => {
      if (this.menuFor !== null && !this.menu.contains(event.relatedTarget)) this.closeMenu({ refocus: false });
    });
    window.addEventListener("resize", () => this.closeMenu({ refocus: false }));
  }

  #keydown(event) {
    if (event.target instanceof HTMLInputElement) return; // the rename box's own keys
    // The contextmenu event that follows these keys looks like a mouse's (Chromium gives it the tab's position).
    this.menuKey = event.key === "ContextMenu" || (event.key === "F10" && event.shiftKey);
    const found = this.#tabOf(event.target);
    if (!found) return;
    const tabs = [...this.list.querySelectorAll("[role=tab]")];
    const at = tabs.indexOf(found.el);
    const to = { ArrowLeft: at - 1, ArrowRight: at + 1, Home: 0, End: tabs.length - 1 }[event.key];
    if (to !== undefined) {
      event.preventDefault();
      const next = tabs[Math.max(0, Math.min(tabs.length - 1, to))];
      this.#rove(next);
      next.focus();
    } else if (event.key === "F2" && found.tab && this.canEdit) {
      event.preventDefault();
      this.startRename(found.id, { pointer: false });
    }
  }

  #run(action, id, pointer) {
    const real = this.tabs.filter((t) => t.id !== null);
    const at = real.findIndex((t) => t.id === id);
    if (at < 0) return;
    if (action === "rename") this.startRename(id, { pointer });
    else if (action === "duplicate") this.host.duplicate(id);
    else if (action === "remove") this.host.remove(id);
    else if (action === "left" && at > 0) this.host.move(id, real[at - 1].id);
    else if (action === "right" && at < real.length - 1) this.host.move(id, real[at + 2]?.id ?? null);
  }

  // ---------------------------------------------------------------- renaming in place

  /**
   * Puts a text box in the tab's place: Enter takes the name, Escape leaves it, leaving the box takes it
   * too. Then the tab has the keyboard again, or (begun with the mouse: `pointer`) the grid.
   */
  startRename(id, { pointer }) {
    if (this.renaming) this.#endRename({ take: false });
    const el = this.elements.get(`sheet:${id}`);
    const tab = this.tabs.find((t) => t.id === id);
    if (!el || !tab) return;
    const input = document.createElement("input");
    input.type = "text";
    input.className = "sheet-rename";
    input.value = tab.name;
    input.size = Math.max(6, tab.name.length + 2);
    input.spellcheck = false;
    input.setAttribute("aria-label", `New name of the sheet “${tab.name}” (at most ${MAX_NAME_CHARS} characters; Enter to rename, Escape to leave it)`);
    this.renaming = { id, input, tab: el, name: tab.name, pointer };
    el.hidden = true;
    el.after(input);
    input.addEventListener("input", () => (input.size = Math.max(6, input.value.length + 2)));
    input.addEventListener("keydown", (event) => {
      event.stopPropagation(); // the grid and the tab list do not see the keys typed here
      if (event.key === "Enter") {
        event.preventDefault();
        this.#endRename({ take: true, keepOpen: true });
      } else if (event.key === "Escape") {
        event.preventDefault();
        this.#endRename({ take: false });
      }
    });
    input.addEventListener("blur", () => {
      if (this.renaming?.input === input) this.#endRename({ take: true, refocus: false });
    });
    input.focus();
    input.select();
  }

  /**
   * Ends a rename: `take` sends the name typed (if it changed). A name the host refuses keeps the box
   * open when Enter was pressed (`keepOpen`), to be corrected; leaving the box leaves the name as it was.
   */
  #endRename({ take, keepOpen = false, refocus = true }) {
    const renaming = this.renaming;
    if (!renaming) return;
    const name = renaming.input.value;
    if (take && name !== renaming.name) {
      const problem = this.host.rename(renaming.id, name);
      if (problem && keepOpen) {
        renaming.input.select();
        return;
      }
    }
    this.renaming = null;
    const hadFocus = document.activeElement === renaming.input;
    renaming.tab.hidden = false;
    renaming.input.remove();
    if (this.stale) this.draw(this.tabs, this.shownId, { canEdit: this.canEdit });
    if (!refocus || !hadFocus) return;
    if (renaming.pointer) this.host.keyboardBack();
    else if (renaming.tab.isConnected) renaming.tab.focus();
  }

  // ---------------------------------------------------------------- dragging

  #listenForDrags() {
    this.list.addEventListener("dragstart", (event) => {
      const found = this.#tabOf(event.target);
      if (!found?.tab || !this.canEdit || this.renaming) {
        event.preventDefault();
        return;
      }
      this.closeMenu({ refocus: false });
      this.dragging = found.id;
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", found.tab.name); // some browsers start no drag without data
      found.el.classList.add("dragging");
    });
    this.list.addEventListener("dragover", (event) => {
      if (this.dragging === null) return;
      event.preventDefault(); // a drop is welcome here
      event.dataTransfer.dropEffect = "move";
      this.#markDrop(this.#dropIndex(event.clientX));
    });
    this.list.addEventListener("dragleave", (event) => {
      if (this.dragging !== null && !this.list.contains(event.relatedTarget)) this.#markDrop(null);
    });
    this.list.addEventListener("drop", (event) => {
      if (this.dragging === null) return;
      event.preventDefault();
      const id = this.dragging;
      const to = this.#dropIndex(event.clientX);
      this.#endDrag();
      const before = this.#beforeAt(id, to);
      if (before !== undefined) this.host.move(id, before);
    });
    this.list.addEventListener("dragend", () => this.#endDrag());
  }

  /** The tabs other than the one dragged, in order. */
  #others() {
    return this.tabs.filter((t) => t.id !== this.dragging);
  }

  /** Where a drop at x puts the tab dragged: an index among the others (before the first whose middle is right of x). */
  #dropIndex(x) {
    const others = this.#others();
    const at = others.findIndex((tab) => {
      const rect = this.elements.get(keyOf(tab))?.getBoundingClientRect();
      return rect && x < rect.left + rect.width / 2;
    });
    return at < 0 ? others.length : at;
  }

  /** The `before` that puts sheet `id` at `to` among the others, or undefined when that is where it is. */
  #beforeAt(id, to) {
    const others = this.tabs.filter((t) => t.id !== id);
    const after = others.slice(to).find((t) => t.id !== null); // a tab still being added has no id to go before
    const before = after ? after.id : null;
    const real = this.tabs.filter((t) => t.id !== null);
    const now = real[real.findIndex((t) => t.id === id) + 1]?.id ?? null;
    return before === now ? undefined : before;
  }

  #markDrop(to) {
    for (const el of this.elements.values()) el.classList.remove("drop-before", "drop-after");
    if (to === null) return;
    const others = this.#others();
    if (!others.length) return;
    if (to < others.length) this.elements.get(keyOf(others[to]))?.classList.add("drop-before");
    else this.elements.get(keyOf(others[others.length - 1]))?.classList.add("drop-after");
  }

  #endDrag() {
    if (this.dragging === null) return;
    this.elements.get(`sheet:${this.dragging}`)?.classList.remove("dragging");
    this.#markDrop(null);
    this.dragging = null;
    if (this.stale) this.draw(this.tabs, this.shownId, { canEdit: this.canEdit });
  }

  // ---------------------------------------------------------------- the tab's menu

  /** Opens a tab's menu at `point` ({x, y}, the pointer), or over the tab (from the keyboard). */
  openMenu(id, point) {
    const tab = this.tabs.find((t) => t.id === id);
    const el = this.elements.get(`sheet:${id}`);
    if (!tab || !el) return;
    const real = this.tabs.filter((t) => t.id !== null);
    const at = real.findIndex((t) => t.id === id);
    const items = [
      { action: "rename", label: "Rename" },
      { action: "duplicate", label: "Duplicate" },
      { action: "left", label: "Move left", disabled: at === 0 },
      { action: "right", label: "Move right", disabled: at === real.length - 1 },
    ];
    // The last sheet cannot go: a workbook has at least one.
    if (real.length > 1) items.push({ action: "remove", label: "Delete", danger: true });
    this.menu.replaceChildren(
      ...items.map((item) => {
        const button = document.createElement("button");
        button.type = "button";
        button.setAttribute("role", "menuitem");
        button.tabIndex = -1;
        button.dataset.action = item.action;
        button.textContent = item.label;
        if (item.danger) button.classList.add("danger");
        if (item.disabled) button.setAttribute("aria-disabled", "true");
        return button;
      }),
    );
    this.menu.setAttribute("aria-label", `Sheet “${tab.name}”`);
    this.menuFor = id;
    this.menu.hidden = false;
    // The bar is at the bottom of the page: the menu opens upwards, inside the window.
    const rect = el.getBoundingClientRect();
    const { width, height } = this.menu.getBoundingClientRect();
    const x = point ? point.x : rect.left;
    const y = point ? point.y : rect.top;
    this.menu.style.left = `${Math.max(4, Math.min(x, window.innerWidth - width - 4))}px`;
    this.menu.style.top = `${Math.max(4, y - height)}px`;
    this.menu.querySelector("[role=menuitem]:not([aria-disabled=true])")?.focus();
  }

  closeMenu({ refocus }) {
    if (this.menuFor === null) return;
    const id = this.menuFor;
    this.menuFor = null;
    const hadFocus = this.menu.contains(document.activeElement);
    this.menu.hidden = true;
    this.menu.replaceChildren();
    if (!refocus || !hadFocus) return;
    if (this.menuByPointer) this.host.keyboardBack();
    else this.elements.get(`sheet:${id}`)?.focus();
  }

  #menuKeydown(event) {
    const items = [...this.menu.querySelectorAll("[role=menuitem]")];
    const at = items.indexOf(document.activeElement);
    const to = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: items.length - 1 }[event.key];
    if (to !== undefined) {
      event.preventDefault();
      items[(to + items.length) % items.length]?.focus();
    } else if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      this.closeMenu({ refocus: true });
    } else if (event.key === "Tab") {
      this.closeMenu({ refocus: true });
    }
  }
}
