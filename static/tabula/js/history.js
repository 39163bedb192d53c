// The workbook's past, in panels beside the grid: a cell's edit history (every value it held, who wrote it
// and when, each put back with one click) and the workbook's versions (each shown read-only in the grid's
// place, and restored with one click). They read the server's history API; what they change goes
// through the page's ordinary paths (main.js, the `host`): a put back is a `set` like typing, a restore
// one operation in the outbox, and both are undone with Ctrl+Z like any edit of the tab.
//
// Each panel is drawn again from its state (the entries loaded, what it is doing) whenever that
// changes: every text goes in with textContent.

import { isTypedFormula } from "./formulas.js";
import { plural } from "./grid.js";
import { shownText } from "./input.js";
import * as protocol from "./protocol.js";

const PAGE = 50; // entries a page
const MOST = 1000; // the API's largest page
const REFETCH_MS = 300; // a cell's history is read again this long after the last change that wrote it
const LABEL_CHARS = 40; // of a value, in a button's accessible name

const WHEN = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const WHEN_EXACT = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });

/** A moment as people read it here: "Mar 5, 2025, 3:04 PM" in the browser's language and time zone. */
export function when(date) {
  return Number.isNaN(date.getTime()) ? "an unknown time" : WHEN.format(date);
}

function timeElement(date) {
  const time = document.createElement("time");
  time.textContent = when(date);
  if (!Number.isNaN(date.getTime())) {
    time.dateTime = date.toISOString();
    time.title = WHEN_EXACT.format(date);
  }
  return time;
}

function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

/** A cell's value as text (a formula's as its text, TRUE and FALSE, an error's code), or null when it is empty (shown as "(empty)"). */
function valueText(value) {
  return value === null || value === undefined || value === "" ? null : String(shownText(value));
}

// Change kinds in words, in the order a version's list of them says them.
const KIND_WORDS = {
  set: "edits",
  insert_rows: "rows inserted",
  delete_rows: "rows deleted",
  insert_cols: "columns inserted",
  delete_cols: "columns deleted",
  rename: "renamed",
  add_sheet: "sheets added",
  duplicate_sheet: "sheets duplicated",
  rename_sheet: "sheets renamed",
  move_sheet: "sheets moved",
  delete_sheet: "sheets deleted",
  batch: "undo, redo or restore",
};

/** What a version's changes were (their kinds and number), in words: "3 edits", "2 changes: edits and rows deleted". */
export function kindsInWords(kinds, count) {
  if (kinds.length === 1 && kinds[0] === "set") return plural(count, "edit");
  const order = Object.keys(KIND_WORDS);
  const rank = (kind) => (order.includes(kind) ? order.indexOf(kind) : order.length);
  const words = [...kinds].sort((a, b) => rank(a) - rank(b)).map((kind) => KIND_WORDS[kind] || kind);
  const list = words.length > 1 ? `${words.slice(0, -1).join(", ")} and ${words[words.length - 1]}` : words[0] || "";
  return `${plural(count, "change")}${list ? `: ${list}` : ""}`;
}

/** GET of the JSON API: {status, body}; status 0 when the server could not be reached. */
async function getJson(url) {
  try {
    const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    return { status: response.status, body: await response.json().catch(() => null) };
  } catch {
    return { status: 0, body: null };
  }
}

/** What a failed read says (each panel words a 410, history no longer kept, itself). */
function failure(status, body, what) {
  if (status === 0) return `Could not reach the server to load ${what}.`;
  if (status === 401) return "You are logged out: log in again to see the history.";
  return protocol.apiErrorMessage(body) || `Loading ${what} failed (${status}).`;
}

/**
 * A panel beside the grid (the template's <aside>): a title that takes the focus when it opens, a
 * close button, Escape to close, a list, a status line and a "Load more" button.
 * host: opening(panel) (before it shows: others close), shown(), closed(refocus).
 */
class SidePanel {
  constructor(element, host) {
    this.el = element;
    this.host = host;
    this.title = element.querySelector("[data-title]");
    this.note = element.querySelector("[data-note]");
    this.status = element.querySelector("[data-status]");
    this.list = element.querySelector("[data-list]");
    this.more = element.querySelector("[data-more]");
    this.end = element.querySelector("[data-end]");
    this.token = 0; // each read's; an answer to an earlier one is dropped
    element.querySelector("[data-close]").addEventListener("click", () => this.close());
    element.addEventListener("keydown", (event) => {
      if (event.key !== "Escape") return;
      event.preventDefault();
      event.stopPropagation();
      this.close();
    });
    this.more.addEventListener("click", () => {
      if (this.more.getAttribute("aria-disabled") !== "true") this.load({ more: this.entries.length > 0 });
    });
  }

  get isOpen() {
    return !this.el.hidden;
  }

  show() {
    this.host.opening(this);
    const wasOpen = this.isOpen;
    this.el.hidden = false;
    this.title.focus();
    if (!wasOpen) this.host.shown();
  }

  /** Closes the panel; `refocus` gives the keyboard back to the grid. */
  close({ refocus = true } = {}) {
    if (!this.isOpen) return;
    const hadFocus = this.el.contains(document.activeElement);
    this.token += 1; // a read under way is dropped: opening again reads again
    this.loading = false;
    this.el.hidden = true;
    this.host.closed(refocus && hadFocus);
  }

  /** The list's end: what "Load more" or the line under the list says. */
  drawEnd({ loading, error, ended, truncated, empty, endText }) {
    // A "Load more" pressed from the keyboard stays (inactive) while it loads: the focus stays on it.
    const focused = document.activeElement === this.more;
    this.more.hidden = (ended && !error) || (loading && !focused);
    this.more.textContent = loading ? "Loading…" : error ? "Try again" : "Load more";
    this.more.setAttribute("aria-disabled", String(loading));
    if (focused && this.more.hidden) this.title.focus();
    this.status.textContent = loading ? "Loading…" : error || "";
    this.status.hidden = !this.status.textContent;
    this.end.textContent = truncated ? "Older history is no longer kept." : empty || endText;
    this.end.hidden = loading || Boolean(error) || !ended || !this.end.textContent;
  }
}

/**
 * The edit history of one cell (by its sheet and ids, so it follows the cell when rows, columns or
 * tabs move): every value it held, newest first, who wrote it and when; "Put back" writes an older
 * one as a new edit. host (besides SidePanel's): workbookId, canEdit(), address(sheetId, rowId, colId)
 * (like "B3", or "Sheet2!B3" off the sheet shown, or null while the cell is not in the workbook),
 * current(sheetId, rowId, colId) (its confirmed content: a formula as {formula}), putBack(sheetId, rowId, colId,
 * value, rev) (a formula's text is read as it was at `rev`).
 */
export class CellHistory extends SidePanel {
  constructor(element, host) {
    super(element, host);
    this.cell = null;
    this.reset();
    this.refetchTimer = null;
  }

  reset() {
    this.entries = [];
    this.loading = false;
    this.error = null;
    this.ended = false;
    this.truncated = false;
    this.said = "";
    this.address = null;
  }

  open(sheetId, rowId, colId) {
    this.cell = { sheetId, rowId, colId };
    this.reset();
    this.render();
    this.show();
    this.load({ more: false });
  }

  close(options) {
    clearTimeout(this.refetchTimer);
    super.close(options);
  }

  /** The cell's address may read otherwise now (it moved, its sheet was renamed or deleted, another tab is shown): drawn again if so. */
  moved() {
    if (!this.isOpen || !this.cell) return;
    const { sheetId, rowId, colId } = this.cell;
    if (this.host.address(sheetId, rowId, colId) !== this.address) this.render();
  }

  /** A change was applied to the model (null: the model was loaded again): follow the cell, read it again if written. */
  changed(change) {
    if (!this.isOpen || !this.cell) return;
    const { rowId, colId } = this.cell;
    this.moved();
    const cells = !change ? null : change.kind === "batch" ? change.steps.flatMap((step) => step.cells || []) : change.cells || [];
    if (cells && !cells.some((c) => c.rowId === rowId && c.colId === colId)) return;
    clearTimeout(this.refetchTimer);
    this.refetchTimer = setTimeout(() => this.load({ more: false }), REFETCH_MS);
  }

  /** Reads the newest entries (as many as are shown, to keep the place), or (`more`) the page below them. */
  async load({ more }) {
    const token = ++this.token;
    const { sheetId, rowId, colId } = this.cell;
    const before = more ? this.entries[this.entries.length - 1]?.rev : undefined;
    const limit = more ? PAGE : Math.min(MOST, Math.max(PAGE, this.entries.length));
    this.loading = true;
    this.error = null;
    this.render();
    const { status, body } = await getJson(protocol.cellHistoryUrl(this.host.workbookId, sheetId, rowId, colId, { before, limit }));
    if (token !== this.token) return;
    this.loading = false;
    if (status === 200) {
      const page = protocol.readCellVersions(body);
      this.entries = more ? [...this.entries, ...page] : page;
      this.ended = page.length < limit;
      if (!more) this.truncated = false;
    } else if (status === 410) {
      [this.ended, this.truncated] = [true, true];
    } else if (status === 404) {
      [this.ended, this.error] = [true, "This cell is not in the workbook: its row, column or sheet was deleted."];
    } else {
      this.error = failure(status, body, "the cell's history");
    }
    this.render();
  }

  render() {
    if (!this.cell) return;
    const { sheetId, rowId, colId } = this.cell;
    this.address = this.host.address(sheetId, rowId, colId);
    this.title.textContent = this.address ? `Edit history of ${this.address}` : "Edit history of a deleted cell";
    this.note.hidden = Boolean(this.address);
    this.note.textContent = this.address ? "" : "This cell was deleted: its row, column or sheet is no longer in the workbook. Undo brings it back if it was yours.";
    const canPutBack = this.host.canEdit();
    const items = this.entries.map((entry, i) => {
      const item = element("li", "history-entry");
      const text = valueText(entry.value);
      item.append(element("div", text === null ? "entry-value empty" : "entry-value", text ?? "(empty)"));
      if (isTypedFormula(entry.value)) item.append(element("div", "entry-computed", `= ${valueText(entry.computed) ?? "(empty)"}`));
      const meta = element("div", "entry-meta");
      meta.append(element("span", "entry-by", entry.by.name || "someone"), " · ", timeElement(entry.at));
      item.append(meta);
      if (i === 0 && valueText(this.host.current(sheetId, rowId, colId)) === text) {
        item.append(element("span", "tag", "Current value"));
      } else if (i > 0 && canPutBack) {
        const button = element("button", "put-back", "Put back");
        button.type = "button";
        const shown = text === null ? "(empty)" : text.length > LABEL_CHARS ? `${text.slice(0, LABEL_CHARS)}…` : text;
        button.setAttribute("aria-label", `Put back “${shown}” (${when(entry.at)})`);
        button.disabled = !this.address;
        button.addEventListener("click", () => {
          this.host.putBack(sheetId, rowId, colId, entry.value, entry.rev);
          this.said = `Put back the value of ${when(entry.at)}.`;
          this.render();
          this.title.focus(); // the button is drawn again: the keyboard stays in the panel
        });
        item.append(button);
      }
      return item;
    });
    this.list.replaceChildren(...items);
    this.drawEnd({
      loading: this.loading,
      error: this.error,
      ended: this.ended,
      truncated: this.truncated,
      empty: this.entries.length ? "" : "No edits of this cell are kept.",
      endText: "No earlier edits are kept.",
    });
    if (!this.loading && !this.error && this.said) {
      this.status.textContent = this.said;
      this.status.hidden = false;
      this.said = "";
    }
  }
}

/**
 * The workbook's versions (one author's changes close together), newest first. Clicking one shows the
 * workbook as it was after it, read-only, in the grid's place (the host's showPast), with a banner to
 * restore it or go back to the live workbook (showLive). The live workbook goes on taking changes meanwhile.
 * host (besides SidePanel's): workbookId, canEdit(), currentRev(), showPast(snapshot), showLive(),
 * restore(rev, description).
 * banner: {el, text, restore, back}, the template's banner over the grid.
 */
export class Versions extends SidePanel {
  constructor(element, banner, toggle, host) {
    super(element, host);
    this.banner = banner;
    this.toggle = toggle;
    this.entries = [];
    this.loading = false;
    this.error = null;
    this.ended = false;
    this.truncated = false;
    this.stale = false; // the workbook changed since the list was read
    this.viewing = null; // the item shown: {rev, description}
    this.viewToken = 0;
    this.viewError = null;
    this.refresh = element.querySelector("[data-refresh]");
    this.refresh.querySelector("button").addEventListener("click", () => {
      this.title.focus(); // the line goes away
      this.load({ more: false });
    });
    toggle.addEventListener("click", () => (this.isOpen ? this.close() : this.open()));
    banner.back.addEventListener("click", () => this.backToLive());
    banner.restore.addEventListener("click", () => this.restore());
    banner.el.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.backToLive();
    });
  }

  open() {
    this.show();
    this.toggle.setAttribute("aria-expanded", "true");
    if (!this.entries.length || this.stale || this.error) this.load({ more: false });
    else this.render();
  }

  close(options) {
    if (!this.isOpen) return;
    this.backToLive({ refocus: false });
    this.toggle.setAttribute("aria-expanded", "false");
    if (this.loading) this.stale = true; // the read under way is dropped: opening again reads again
    super.close(options);
  }

  /** A change was applied to the live workbook: the list is out of date, and an old version is older now. */
  changed() {
    if (this.entries.length || this.loading) this.stale = true;
    if (!this.isOpen) return;
    this.refresh.hidden = !this.stale || this.loading;
    this.drawBanner();
  }

  async load({ more }) {
    const token = ++this.token;
    const before = more ? this.entries[this.entries.length - 1]?.firstRev : undefined;
    this.loading = true;
    this.error = null;
    this.viewError = null;
    if (!more) this.stale = false;
    this.render();
    const { status, body } = await getJson(protocol.versionsUrl(this.host.workbookId, { before, limit: PAGE }));
    if (token !== this.token) return;
    this.loading = false;
    if (status === 200) {
      const page = protocol.readVersions(body);
      this.entries = more ? [...this.entries, ...page] : page;
      this.ended = page.length < PAGE;
      if (!more) this.truncated = false;
    } else if (status === 410) {
      [this.ended, this.truncated] = [true, true];
    } else {
      this.error = failure(status, body, "the versions");
    }
    this.render();
  }

  /** The items the list shows: each version, and after the last one (all read) the workbook before it. */
  items() {
    const items = this.entries.map((entry, i) => ({
      rev: entry.rev,
      entry,
      current: i === 0 && entry.rev >= this.host.currentRev(),
      description: `the version of ${when(entry.at)} by ${entry.by.name || "someone"}`,
    }));
    const oldest = this.entries[this.entries.length - 1];
    if (this.ended && !this.truncated && oldest && oldest.firstRev >= 1) {
      const rev = oldest.firstRev - 1;
      const label = rev === 0 ? "As created" : "The oldest version kept";
      items.push({ rev, entry: null, label, description: rev === 0 ? "the workbook as it was created" : "the oldest version kept" });
    }
    return items;
  }

  render() {
    this.title.textContent = "Version history";
    this.refresh.hidden = !this.stale || this.loading;
    const focused = this.list.contains(document.activeElement) ? document.activeElement.dataset.rev : undefined;
    const items = this.items().map((item) => {
      const li = element("li");
      const button = element("button", "version");
      button.type = "button";
      button.dataset.rev = String(item.rev);
      button.setAttribute("aria-current", String(this.viewing?.rev === item.rev));
      if (item.entry) {
        const head = element("span", "version-when");
        head.append(timeElement(item.entry.at));
        button.append(head, element("span", "version-by", item.entry.by.name || "someone"), element("span", "version-what", kindsInWords(item.entry.kinds, item.entry.count)));
        if (item.current) button.append(element("span", "tag", "Current version"));
      } else {
        button.append(element("span", "version-when", item.label));
      }
      button.addEventListener("click", () => this.view(item));
      li.append(button);
      return li;
    });
    this.list.replaceChildren(...items);
    if (focused !== undefined) (this.list.querySelector(`button[data-rev="${focused}"]`) || this.title).focus(); // drawn again: the keyboard stays
    this.drawEnd({
      loading: this.loading,
      error: this.error,
      ended: this.ended,
      truncated: this.truncated,
      empty: this.entries.length ? "" : "No changes yet.",
      endText: "",
    });
    if (!this.loading && !this.error && this.viewError) {
      this.status.textContent = this.viewError;
      this.status.hidden = false;
    }
  }

  /** Shows the workbook as it was after `item` in the grid's place. */
  async view(item) {
    const token = ++this.viewToken;
    this.viewError = null;
    this.viewing = { rev: item.rev, description: item.description, pending: true };
    this.render();
    this.banner.text.textContent = `Loading ${item.description}…`;
    this.banner.el.hidden = false;
    this.banner.restore.hidden = true;
    const { status, body } = await getJson(protocol.snapshotUrl(this.host.workbookId, item.rev));
    if (token !== this.viewToken || !this.isOpen) return;
    if (status === 200) {
      this.viewing = { rev: item.rev, description: item.description };
      this.host.showPast(protocol.readSnapshot(body));
      this.drawBanner();
      return;
    }
    this.viewError = status === 410 ? "That version is no longer kept." : failure(status, body, "that version");
    this.backToLive({ refocus: false });
  }

  drawBanner() {
    if (!this.viewing || this.viewing.pending) return;
    this.banner.text.textContent = `Viewing ${this.viewing.description} — read-only`;
    this.banner.restore.hidden = !this.host.canEdit() || this.viewing.rev >= this.host.currentRev();
    this.banner.el.hidden = false;
  }

  /** Back to the live workbook (the list stays open, with the keyboard on the version that was shown). */
  backToLive({ refocus = true } = {}) {
    this.viewToken += 1;
    const shown = this.viewing;
    this.viewing = null;
    this.banner.el.hidden = true;
    this.host.showLive();
    if (!this.isOpen) return;
    this.render();
    if (refocus && shown) this.list.querySelector(`button[data-rev="${shown.rev}"]`)?.focus();
  }

  /** Restores the version shown (as one new change), then goes back to the live workbook. */
  restore() {
    if (!this.viewing || this.viewing.pending || !this.host.canEdit()) return;
    const { rev, description } = this.viewing;
    this.host.restore(rev, description);
    this.backToLive();
  }
}
