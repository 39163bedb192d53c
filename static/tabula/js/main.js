// Boot and the rules that tie the parts together. What the grid shows is the confirmed server model
// with this client's pending edits laid over it; server changes move the model forward in revision
// order, and the user's edits travel as operations that the server's changes later confirm.
//
// An earlier version of the workbook is shown in a read-only grid of its own over the live grid's place
// (showPast), never in the live grid: the live grid goes on showing the model with the pending edits
// laid over it, hidden, taking every change that arrives meanwhile, so going back to the live workbook
// is only the past grid going away, with nothing to rebuild and nothing lost.
//
// A workbook has several sheets (tabs); one grid shows one of them, the one the page's address names
// (#sheet=ID). The model holds them all and every change moves it forward, whichever sheet it is on:
// switching tabs only loads the grid from the model. Row and column ids are unique in the workbook, so
// pending cells and positions need no sheet: a cell of another sheet has no position in the one shown.

import { Edits } from "./edits.js";
import { FormulaBar } from "./formulabar.js";
import { Pointer, formulaText, isTypedFormula, referencesIn } from "./formulas.js";
import { Grid, PastGrid, plural } from "./grid.js";
import { CellHistory, Versions } from "./history.js";
import { editorText, typedValue } from "./input.js";
import { WorkbookModel } from "./model.js";
import { Presence, Throttle } from "./presence.js";
import * as protocol from "./protocol.js";
import { copyName, freeName, nameProblem, qualifiedName, tabsShown } from "./sheets.js";
import { WorkbookSocket, socketUrl } from "./socket.js";
import { StoredOutbox } from "./stored.js";
import { Suggestions } from "./suggest.js";
import { TabBar } from "./tabs.js";

const SEND_PER_SECOND = 200; // below the server's sustained limit, leaving room for select and sync
const NOTICE_MS = 10000;
const PROBE_EVERY = 4; // failed reconnects between checks that the workbook is still ours
const LOGIN_CHECK_MS = 15000; // while logged out: how often to look whether this browser logged in again
// After a 4401, how long to let a password change made in this browser deliver the session's new key
// before asking the server whether the browser is logged in (see loginEnded).
const LOGIN_SETTLE_MS = 1500;

const cellKey = (rowId, colId) => JSON.stringify([rowId, colId]);
const ON_MAC = /mac|iphone|ipad/i.test(navigator.userAgentData?.platform || navigator.platform || "");
/** The keys of undo and redo as this platform writes them. */
// The colours of a formula's references on the grid, in the order it names them (as spreadsheets colour them).
const REFERENCE_COLORS = ["#1a73e8", "#d93025", "#8e24aa", "#188038", "#e37400", "#12a4af", "#c2185b", "#5f6368"];

const SHORTCUTS = ON_MAC ? { undo: "⌘Z", redo: "⇧⌘Z" } : { undo: "Ctrl+Z", redo: "Ctrl+Y" };
const MAX_NAMED_CELLS = 3; // a notice names this many cells, then says how many more
const MAX_SHEETS = 200; // a workbook's, unless the page's configuration says otherwise
const AUTO_NAME_TRIES = 5; // a new sheet's name, chosen again when someone took it meanwhile
// What a refused sheet operation was, for its notice: "Could not rename the sheet: ...".
const SHEET_VERBS = {
  add_sheet: "add the sheet",
  duplicate_sheet: "duplicate the sheet",
  rename_sheet: "rename the sheet",
  move_sheet: "move the sheet",
  delete_sheet: "delete the sheet",
};

/** Where a cell is in `sheet`, {row, col}; null when it is not there. */
function positionIn(sheet, { rowId, colId }) {
  const row = sheet?.rowIndex.get(rowId);
  const col = sheet?.colIndex.get(colId);
  return row === undefined || col === undefined ? null : { row, col };
}

class WorkbookSession {
  constructor(config, page) {
    this.config = config;
    this.page = page;
    this.role = config.role;
    this.limits = config.limits;
    this.me = null;
    this.stored = new StoredOutbox(config.userId, config.workbookId);
    // Every operation of this tab carries the tab's id as its session: undo takes back this tab's own.
    this.tabSession = this.stored.tabId;
    this.storageWarned = false;
    this.keeping = false;
    this.edits = new Edits({
      onChange: () => {
        this.keep();
        this.drawTabsSoon(); // the sheet operations waiting show on the tabs
      },
    });
    this.presence = new Presence(page.presence);
    this.model = null;
    this.shownId = null; // the sheet the grid shows
    this.selections = new Map(); // sheet id -> the grid's selection (positions) when it was last shown
    this.tabs = null;
    this.tabsQueued = false;
    this.autoNamed = new Map(); // op -> tries: a sheet added (or duplicated) under a name the page chose
    this.grid = null;
    this.past = null; // the grid showing an earlier version in the live grid's place, while one is shown
    this.pastSnapshot = null; // the version it shows (every sheet of it: switching tabs shows another)
    this.cellHistory = null;
    this.versions = null;
    this.held = new Map(); // rev -> change that arrived ahead of a missing one
    this.deferred = new Map(); // cellKey -> {rowId, colId}: remote values waiting for an editor to close
    this.live = false;
    this.syncing = false;
    this.reloading = false;
    this.gone = null; // why the workbook can no longer be reached, once it cannot
    this.loginNeeded = false; // this browser is logged out: the page waits for it to log in again
    this.loginTimer = null;
    this.sentThisSecond = 0;
    this.pumpTimer = null;
    this.selection = [];
    this.inbox = [];
    this.inboxTimer = null;
    this.selectThrottle = new Throttle(({ sheet, ranges }) => this.live && this.socket.send(protocol.select(sheet, ranges)));
  }

  async start() {
    const snapshot = await this.snapshotWhenReachable();
    if (!snapshot) return;
    this.model = new WorkbookModel(snapshot);
    this.showName(this.model.name);
    const linked = protocol.sheetInHash(window.location.hash);
    this.shownId = this.model.sheet(linked) ? linked : this.model.sheets[0].id;
    if (linked !== null && linked !== this.shownId) this.notify(`The sheet this link named is not in the workbook (deleted, or never there): showing “${this.sheet.name}”.`);
    if (linked !== null) this.nameShownSheet();
    // The snapshot's rows are the model's values in column order already (the model copied them):
    // the grid takes them as they are rather than having the model build them again.
    this.grid = new Grid(
      this.page.grid,
      {
        licenseKey: this.config.licenseKey,
        readOnly: this.isViewer,
        titles: this.sheet.titles,
        rows: snapshot.sheets.find((s) => s.id === this.shownId).rows.map((r) => r.values),
        maxValueChars: this.limits.maxValueChars,
        shortcuts: SHORTCUTS,
        suggestions: new Suggestions(this.config.functions || [], this.page.editorSuggestions),
      },
      {
        onEdit: (changes) => this.userEdited(changes),
        onPaste: (paste) => this.userPasted(paste),
        onTooLong: (length) => this.notify(`A cell holds at most ${plural(this.limits.maxValueChars, "character")}; this text has ${length.toLocaleString("en-US")}. Shorten it, or press Escape to cancel.`),
        onStructure: (action) => this.userRestructured(action),
        onSelect: (ranges) => this.userSelected(ranges),
        onEditorMaybeClosed: () => this.flushDeferred(),
        onHistory: (kind) => this.userWentBack(kind),
        onCellHistory: ({ row, col }) => this.showCellHistory(row, col),
        onSheetStep: (by) => this.stepSheet(by),
        formulaAt: (row, col) => this.formulaAt(row, col),
        formulaMoved: (fromRow, fromCol, toRow, toCol) => this.formulaMoved(fromRow, fromCol, toRow, toCol),
        onFormulaTyped: (field) => this.formulaTyped(field),
        pointingField: () => this.pointingField(),
        onPoint: (field, row, col, extend) => this.pointer.point(field, row, col, extend),
      },
    );
    this.pointer = new Pointer();
    this.typingIn = null; // the field a formula is being typed in: the bar's input or a cell's editor
    this.formulaBar = new FormulaBar(
      { name: this.page.cellName, input: this.page.formulaInput, suggestions: this.page.formulaSuggestions },
      {
        functions: this.config.functions || [],
        commit: (text) => this.barCommitted(text),
        done: ({ moveDown }) => this.barDone(moveDown),
        canEdit: () => !this.isViewer && !this.halted && !this.past,
        typed: (input) => this.formulaTyped(input),
      },
    );
    this.startHistoryPanels();
    this.startTabs();
    this.socket = new WorkbookSocket(socketUrl(this.config.workbookId), {
      onOpen: () => this.showConnection(),
      onMessage: (text) => this.enqueue(text),
      onDown: (info) => this.connectionLost(info),
      onGone: (code) => this.closedForGood(code),
    });
    this.restore(this.stored.claim());
    this.stored.watch((entries) => this.restore(entries));
    for (const name of ["online", "offline"]) window.addEventListener(name, () => this.showConnection());
    window.addEventListener("beforeunload", (event) => {
      // Waiting edits are kept in this browser and sent next time, but only this page can send them now.
      if (this.edits.waiting && !this.halted) {
        event.preventDefault();
        event.returnValue = "";
      }
    });
    this.socket.start();
  }

  // ------------------------------------------------------------ waiting edits kept in the browser

  /**
   * Stores the outbox once for all the changes made to it in this task (a reconnect's acknowledgements
   * settle hundreds of operations at once): before the task ends, so before the page can go away.
   */
  keep() {
    if (this.keeping) return;
    this.keeping = true;
    queueMicrotask(() => {
      this.keeping = false;
      if (this.stored.save(this.edits.stored()) || this.storageWarned) return;
      this.storageWarned = true;
      this.notify("This browser's storage is full: your waiting edits are kept only while this page stays open.", { sticky: true });
    });
  }

  /** Takes on operations a reload or another tab left waiting: shown as pending, sent when live. */
  restore(entries) {
    const fresh = entries.filter((entry) => !this.edits.has(entry.op));
    if (!fresh.length || this.gone) return;
    for (const entry of fresh) this.edits.add(entry);
    this.refresh(fresh.flatMap((entry) => entry.cells || []));
    this.resumePastes();
    this.notify(`${plural(fresh.length, "edit")} made earlier in this browser ${fresh.length === 1 ? "was" : "were"} not sent yet; sending ${fresh.length === 1 ? "it" : "them"} as soon as the page is connected.`);
    this.pump();
    this.showConnection();
  }

  get isViewer() {
    return this.role === "viewer";
  }

  /** True while nothing can be sent: the workbook is gone for us, or this browser is logged out. */
  get halted() {
    return Boolean(this.gone) || this.loginNeeded;
  }

  // ------------------------------------------------------------ snapshot

  /** The workbook as the server has it now, or null (and the reason on screen). */
  async fetchSnapshot() {
    let response;
    try {
      response = await fetch(protocol.snapshotUrl(this.config.workbookId), { headers: { Accept: "application/json" }, credentials: "same-origin" });
    } catch {
      this.notify("Could not reach the server to load the workbook; retrying.");
      return null;
    }
    const body = await response.json().catch(() => null);
    if (response.ok) return protocol.readSnapshot(body);
    if (response.status === 401) {
      this.loggedOut();
    } else if ([403, 404].includes(response.status)) {
      this.stopForGood(protocol.apiErrorMessage(body) || "This workbook is not available to you.");
    } else {
      this.notify(protocol.apiErrorMessage(body) || `Loading the workbook failed (${response.status}).`);
    }
    return null;
  }

  /** Fetches the snapshot, retrying while the server cannot be reached; null once the workbook is gone. */
  async snapshotWhenReachable() {
    for (;;) {
      const snapshot = await this.fetchSnapshot();
      if (snapshot || this.gone || this.loginNeeded) return snapshot;
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }

  async reload() {
    if (this.reloading) return;
    this.reloading = true;
    const snapshot = await this.snapshotWhenReachable();
    this.reloading = false;
    if (!snapshot) return;
    const at = this.model.sheets.findIndex((sheet) => sheet.id === this.shownId);
    this.model = new WorkbookModel(snapshot);
    this.showName(this.model.name);
    if (!this.sheet) {
      this.grid.cancelEditor(); // its sheet is gone
      this.shownId = this.model.sheets[Math.min(Math.max(0, at), this.model.sheets.length - 1)].id;
      this.nameShownSheet();
    }
    this.deferred.clear();
    this.grid.load(this.displayRows(), this.sheet.titles);
    this.grid.setHighlights(this.presence.rectangles(this.sheet));
    this.drawTabs();
    this.cellHistory.changed(null);
    this.versions.changed();
    for (const rev of [...this.held.keys()]) if (rev <= this.model.rev) this.held.delete(rev);
    this.syncing = false;
    this.drain();
    this.requestSync();
  }

  // ------------------------------------------------------------ server messages

  /** Messages that arrive together are handled together, with the grid drawn once after them. */
  enqueue(text) {
    this.inbox.push(text);
    if (this.inboxTimer === null) this.inboxTimer = setTimeout(() => this.processInbox(), 0);
  }

  processInbox() {
    this.inboxTimer = null;
    const texts = this.inbox;
    this.inbox = [];
    this.grid.batch(() => {
      for (const text of texts) this.received(protocol.readMessage(text));
    });
  }

  received(message) {
    if (!message || !this.model) return;
    switch (message.type) {
      case "hello":
        return this.hello(message);
      case "change":
        return this.receiveChange(message.change);
      case "error":
        return this.operationFailed(message);
      case "presence":
        this.presence.update(message.users);
        return this.grid.setHighlights(this.presence.rectangles(this.sheet));
      case "pong":
        return undefined;
      case "synced":
        this.syncing = false;
        this.drain();
        if (message.rev > this.model.rev || this.held.size) this.requestSync();
        return undefined;
      case "reload":
        this.syncing = false;
        return this.reload();
      default:
        return undefined;
    }
  }

  hello(message) {
    if (message.me.id !== this.config.userId) {
      // Another tab logged this browser in as someone else: this page's edits are not theirs to send.
      this.socket.stop();
      this.stopForGood(
        `This browser is now logged in as ${message.me.name}. Reload the page to work as them; the edits this page had not sent yet are kept in this browser for when you log in again.`,
      );
      return;
    }
    this.live = true;
    this.me = message.me;
    this.syncing = false;
    if (message.role !== this.role) this.changeRole(message.role);
    this.presence.setMe(message.me);
    this.presence.update(message.users);
    this.grid.setHighlights(this.presence.rectangles(this.sheet));
    // Close any gap first, then resend what was never acknowledged: a retried op the server already
    // applied is answered with its original change, which the sync has delivered by then.
    this.requestSync();
    this.edits.resendAll();
    this.pump();
    // Even with nothing selected: the others learn which sheet this page is on.
    this.selectThrottle.push({ sheet: this.shownId, ranges: this.selection });
    this.showConnection();
  }

  receiveChange(change) {
    if (change.rev <= this.model.rev) {
      this.settle(change.op); // a duplicate: the answer to a retried op, or a change a sync already gave
      return;
    }
    this.held.set(change.rev, change);
    if (this.reloading) return;
    this.drain();
    if (this.held.size) this.requestSync();
  }

  /** Applies every held change that follows the model, in order. */
  drain() {
    while (this.held.has(this.model.rev + 1)) {
      const change = this.held.get(this.model.rev + 1);
      this.held.delete(change.rev);
      this.apply(change);
    }
    for (const rev of this.held.keys()) if (rev <= this.model.rev) this.held.delete(rev);
    this.showConnection();
  }

  requestSync() {
    if (!this.live || this.syncing || this.reloading) return;
    this.syncing = this.socket.send(protocol.sync(this.model.rev));
  }

  apply(change) {
    const editing = this.editingIds();
    const mine = this.edits.has(change.op);
    const shownBefore = this.shownId;
    const effect = this.model.apply(change);
    const steps = effect.kind === "batch" ? effect.effects : [effect];
    const tabs = { reload: false, changed: false };
    if (effect.kind === "set") {
      // Our own cells already show what the server applied; others' never cover a pending edit.
      // (A formula of ours shows as typed until then: its computed value is shown now.)
      const ours = new Set(mine ? this.edits.settle(change.op).map((c) => cellKey(c.rowId, c.colId)) : []);
      this.refresh(effect.cells.filter((c) => (c.parts || !ours.has(cellKey(c.rowId, c.colId))) && !this.edits.pendingAt(c.rowId, c.colId)));
      if (change.overwritten?.length) this.reportOverwritten(change);
    } else {
      // A batch (an undo or redo) is its steps one after the other, each like the change it is: the
      // grid goes through the same structure changes as the model, then shows the cells they wrote.
      const written = [];
      for (const step of steps) this.show(step, written, tabs);
      this.refresh(written.filter((c) => !this.edits.pendingAt(c.rowId, c.colId)));
    }
    // Other cells whose values the change altered (formulas computed again), where this tab shows them.
    this.refresh(change.computed.filter((c) => c.sheetId === this.shownId && !this.edits.pendingAt(c.rowId, c.colId)));
    const what = change.restoreOf !== undefined ? "restore" : change.redoOf === undefined ? "undo" : "redo";
    if (!this.sheet) {
      // The sheet shown is gone: its neighbour (the one now in its place, else the one before it) takes its place.
      const gone = steps.find((step) => step.kind === "delete_sheet" && step.sheet === shownBefore);
      const at = Math.min(Math.max(0, gone?.at ?? 0), this.model.sheets.length - 1);
      this.showSheet(this.model.sheets[at].id, { gone: true });
      if (gone && !(mine && change.kind !== "batch")) {
        const by = change.kind !== "batch" ? change.by.name : `${mine ? "your" : `${change.by.name}'s`} ${what}`;
        this.notify(`Sheet “${gone.name}” was deleted by ${by}.`);
      }
    } else if (tabs.reload) {
      this.loadGrid(); // the sheet shown was taken away and put back within the batch
    } else if (editing && !this.positionOf(editing)) {
      const by = change.kind !== "batch" ? "someone else" : `${mine ? "your" : `${change.by.name}'s`} ${what}`;
      this.notify(`The cell you were editing was deleted by ${by}.`);
    }
    if (change.restoreOf !== undefined && !mine) this.notify(`${change.by.name} restored an earlier version of the workbook.`);
    if (effect.kind !== "set") {
      this.settle(change.op);
      if (effect.kind !== "rename") this.grid.setHighlights(this.presence.rectangles(this.sheet));
    }
    if (tabs.changed) {
      // A sheet this tab added (or brought back with its undo) is shown, as a spreadsheet shows a new tab.
      const added = mine && change.restoreOf === undefined ? steps.filter((step) => step.kind === "add_sheet" || step.kind === "duplicate_sheet").pop() : null;
      if (added && this.model.sheet(added.sheet)) {
        // Its grid takes the keyboard, unless the keyboard is busy elsewhere (a panel, a tab being renamed).
        const active = document.activeElement;
        this.showSheet(added.sheet, { pointer: !active || active === document.body || active === this.page.sheetAdd || this.page.grid.contains(active) });
      }
      this.drawTabs();
    }
    if (mine && change.skipped?.length) this.reportSkipped(change);
    this.showActiveCell();
    this.cellHistory.changed(change);
    this.versions.changed();
  }

  /**
   * Shows one effect of the model's other than a whole set: structure (on the sheet shown) and names;
   * a set's cells go to `written`. `tabs.changed`: the list of tabs changed; `tabs.reload`: the sheet
   * shown was added or deleted (the grid is loaded again once the steps are done).
   */
  show(effect, written, tabs) {
    const here = effect.sheet === this.shownId;
    switch (effect.kind) {
      case "set":
        written.push(...effect.cells);
        break;
      case "insert_rows":
        if (here) this.grid.insertRows(effect.at, effect.count);
        break;
      case "insert_cols":
        if (here) this.grid.insertCols(effect.at, effect.count, this.sheet.titles);
        break;
      case "delete_rows":
        this.edits.dropRows(effect.ids);
        if (here) this.grid.removeRows(effect.positions);
        break;
      case "delete_cols":
        this.edits.dropCols(effect.ids);
        if (here) this.grid.removeCols(effect.positions, this.sheet.titles);
        break;
      case "rename":
        this.showName(effect.name);
        break;
      case "delete_sheet":
        this.edits.dropRows(effect.rowIds); // its pending cells: the server refuses their edits
        tabs.changed = true;
        tabs.reload ||= here;
        break;
      case "add_sheet":
      case "duplicate_sheet":
        tabs.reload ||= here;
        tabs.changed = true;
        break;
      case "rename_sheet":
      case "move_sheet":
        tabs.changed = true;
        break;
      default:
        break;
    }
  }

  /** Our undo (redo) left things others changed since as they are: say what, in a few words. */
  reportSkipped(change) {
    let [cells, rows, cols, sheets, name] = [0, 0, 0, 0, false];
    for (const { sheetId, rowId, colId } of change.skipped) {
      if (rowId !== null && colId !== null) cells += 1;
      else if (rowId !== null) rows += 1;
      else if (colId !== null) cols += 1;
      else if (sheetId !== null) sheets += 1;
      else name = true;
    }
    const parts = [cells && plural(cells, "cell"), rows && plural(rows, "row"), cols && plural(cols, "column"), sheets && plural(sheets, "sheet"), name && "the workbook's name"].filter(Boolean);
    const list = parts.length > 1 ? `${parts.slice(0, -1).join(", ")} and ${parts[parts.length - 1]}` : parts[0];
    const one = parts.length === 1 && (name || cells + rows + cols + sheets === 1);
    const done = change.redoOf === undefined ? "Undone" : "Redone";
    this.notify(`${done}, except ${list} changed since by someone else (or in another tab): ${one ? "it was" : "they were"} left as ${one ? "it is" : "they are"}.`);
  }

  /** The server answered one of our ops: its cells stop being pending and show the model's values. */
  settle(op) {
    if (!this.edits.has(op)) return;
    this.refresh(this.edits.settle(op));
    this.resumePastes();
    this.showConnection();
  }

  operationFailed(message) {
    const history = message.op ? this.edits.historyOf(message.op) : null;
    const sent = message.op ? this.edits.messageOf(message.op) : null;
    if (message.op && this.edits.has(message.op)) {
      if (message.code === "rate_limited") {
        this.edits.retry(message.op);
        this.schedulePump(1000);
        return;
      }
      // Refused for good: out of the outbox (and the browser's storage), never sent again. An edit
      // on a sheet deleted meanwhile ends here too (not_found), with the server's words for it.
      this.refresh(this.edits.settle(message.op));
      this.resumePastes();
      this.showConnection();
    }
    const tries = this.autoNamed.get(message.op);
    this.autoNamed.delete(message.op);
    if (tries !== undefined && message.code === "conflict" && tries < AUTO_NAME_TRIES) {
      // The name this page chose for a new sheet was taken meanwhile (someone added one at the same time): the next free one.
      this.renameAndResend(sent, tries + 1);
    } else if (history && message.code === "conflict") this.notify(`Nothing to ${history}`);
    else if (history) this.notify(`Could not ${history}: ${message.message}`);
    else if (SHEET_VERBS[sent?.type]) this.notify(`Could not ${SHEET_VERBS[sent.type]}: ${message.message}`);
    else this.notify(`Not saved: ${message.message}`);
  }

  // ------------------------------------------------------------ what the grid shows

  /** The model of the sheet shown (undefined for a moment when a change deletes it). */
  get sheet() {
    return this.model?.sheet(this.shownId);
  }

  /** A cell of the sheet shown as the grid shows it: its pending value, else the model's. */
  /**
   * A formula is being typed in `field` (the bar's input or a cell's editor; null: no longer): the
   * references it names on the sheet shown are coloured on the grid, each its own colour, as spreadsheets do.
   */
  formulaTyped(field) {
    if (field !== this.typingIn || !field) this.pointer.typed();
    this.typingIn = field;
    if (field === this.page.formulaInput) this.grid.unlisten(); // the bar has the keyboard, even after a click on the grid pointed
    else if (field) this.formulaBar.mirror(field.value);
    else this.showActiveCell();
    const references = [];
    if (field) {
      const [rows, cols] = [this.sheet.rowIds.length, this.sheet.colIds.length];
      referencesIn(field.value).forEach((ref, i) => {
        if (ref.sheet !== null && ref.sheet.toLowerCase() !== this.sheet.name.toLowerCase()) return;
        const box = { top: ref.top ?? 0, left: ref.left ?? 0, bottom: ref.bottom ?? rows - 1, right: ref.right ?? cols - 1 };
        if (box.top < rows && box.left < cols) references.push({ ...box, color: REFERENCE_COLORS[i % REFERENCE_COLORS.length] });
      });
    }
    this.grid.setReferences(references);
  }

  /** The field a click on the grid points from (see formulas.js's Pointer), or null. */
  pointingField() {
    const field = this.typingIn;
    return field && document.activeElement === field && this.pointer.canPoint(field) ? field : null;
  }

  /** The formula bar shows the active cell: its name and what it holds (a formula's text). */
  showActiveCell() {
    const at = this.grid?.activeCell();
    const ids = at && this.idsAt(at.row, at.col);
    if (!this.formulaBar) return;
    if (!ids) {
      this.formulaBar.show("", "");
      return;
    }
    this.formulaBar.show(`${this.sheet.titles[at.col]}${at.row + 1}`, this.formulaAt(at.row, at.col) ?? editorText(this.shown(ids.rowId, ids.colId)));
  }

  /** The formula bar's text, written to the active cell as typing it there would. */
  barCommitted(text) {
    const at = this.grid.activeCell();
    if (!at) return;
    const value = typedValue(text);
    if (typeof value === "string" && value.length > this.limits.maxValueChars) {
      this.notify(`A cell holds at most ${plural(this.limits.maxValueChars, "character")}.`);
      return;
    }
    if (isTypedFormula(value) && value.formula.length > this.limits.maxFormulaChars) {
      this.notify(`A formula has at most ${plural(this.limits.maxFormulaChars, "character")}.`);
      return;
    }
    const old = this.grid.data()[at.row]?.[at.col];
    this.grid.setCells([[at.row, at.col, value]]);
    this.userEdited([{ row: at.row, col: at.col, old, value }]);
  }

  /** The keyboard goes back to the grid from the formula bar (after Enter, on the cell below). */
  barDone(moveDown) {
    const at = this.grid.activeCell();
    if (at) this.grid.selectCell(at.row + (moveDown ? 1 : 0), at.col);
    this.showActiveCell();
  }

  /** The formula at a position of the sheet shown as copied to another ({formula}, moved that far), or null. */
  formulaMoved(fromRow, fromCol, toRow, toCol) {
    const sheet = this.sheet;
    const [rowId, colId] = [sheet?.rowIds[fromRow], sheet?.colIds[fromCol]];
    const parts = rowId === undefined || colId === undefined ? undefined : sheet.formula(rowId, colId);
    return parts ? { formula: formulaText(parts, sheet.id, this.model, { rows: toRow - fromRow, cols: toCol - fromCol }) } : null;
  }

  /** The A1 text of the formula at a position of the sheet shown (as this tab's grid has it now), or null. */
  formulaAt(row, col) {
    const sheet = this.sheet;
    const rowId = sheet?.rowIds[row];
    const colId = sheet?.colIds[col];
    if (rowId === undefined || colId === undefined || this.edits.pendingAt(rowId, colId)) return null;
    const parts = sheet.formula(rowId, colId);
    return parts ? formulaText(parts, sheet.id, this.model) : null;
  }

  shown(rowId, colId) {
    const pending = this.edits.pendingAt(rowId, colId);
    return pending ? pending.value : this.sheet.value(rowId, colId);
  }

  displayRows() {
    const sheet = this.sheet;
    return sheet.rowIds.map((r) => sheet.colIds.map((c) => this.shown(r, c)));
  }

  editingIds() {
    const cell = this.grid.editingCell();
    const sheet = this.sheet;
    if (!cell || !sheet) return null;
    const rowId = sheet.rowIds[cell.row];
    const colId = sheet.colIds[cell.col];
    return rowId === undefined || colId === undefined ? null : { rowId, colId };
  }

  /** Where a cell is in the sheet shown, {row, col}; null when it is not there (deleted, or on another sheet). */
  positionOf(cell) {
    return positionIn(this.sheet, cell);
  }

  /** Redraws cells [{rowId, colId}] from the model and pending edits; never under an open editor. */
  refresh(cells) {
    const editing = this.editingIds();
    const updates = [];
    for (const { rowId, colId } of cells) {
      const at = this.positionOf({ rowId, colId });
      if (!at) continue;
      if (editing && editing.rowId === rowId && editing.colId === colId) {
        this.deferred.set(cellKey(rowId, colId), { rowId, colId });
        continue;
      }
      updates.push([at.row, at.col, this.shown(rowId, colId)]);
    }
    this.grid.setCells(updates);
  }

  flushDeferred() {
    if (!this.deferred.size || this.grid.editingCell()) return;
    const cells = [...this.deferred.values()];
    this.deferred.clear();
    this.refresh(cells);
  }

  // ------------------------------------------------------------ the user's actions

  /** The tags of this tab's operations: its session, and the `group` of the user action they make up, if any. */
  tags(group) {
    return { session: this.tabSession, group };
  }

  /** `group` (optional): the id the operations of one user action share, undone as one step. */
  userEdited(changes, group) {
    if (this.isViewer || this.halted || this.past) {
      this.refresh(changes.map((c) => this.idsAt(c.row, c.col)).filter(Boolean));
      return;
    }
    const writes = [];
    const tooLong = [];
    for (const { row, col, old, value } of changes) {
      const ids = this.idsAt(row, col);
      if (!ids) continue;
      const next = protocol.cellValue(value);
      if (next === protocol.cellValue(old)) continue;
      if (typeof next === "string" && next.length > this.limits.maxValueChars) tooLong.push(ids);
      else writes.push({ ...ids, value: next });
    }
    if (tooLong.length) {
      // Only a paste or a fill gets here (the editor keeps typed text over the limit): the text is still where it came from.
      this.refresh(tooLong);
      this.notify(`${plural(tooLong.length, "cell")} not pasted: a cell holds at most ${plural(this.limits.maxValueChars, "character")}.`);
    }
    this.send(writes, group);
  }

  /** Sends cell writes [{rowId, colId, value}] on sheet `sheetId` (default: the one shown) made against the revision the grid shows. */
  send(writes, group, sheetId = this.shownId, rev = this.model.rev) {
    if (!writes.length) return;
    for (const operation of this.setOperations(writes, this.tags(group), sheetId, rev)) this.edits.add(operation);
    this.pump();
    this.showConnection();
  }

  setOperations(writes, tags, sheetId, rev = this.model.rev) {
    return protocol.setOperations(writes, { sheet: sheetId, maxCells: this.limits.maxCellsPerSet, rev, ...tags });
  }

  /**
   * A paste: the cells inside the grid are edits now; for those beyond its last row or column the
   * workbook grows (up to its limits), and they follow once the new rows and columns are there (the
   * server issues their ids). What cannot fit is named in a notice.
   */
  userPasted({ changes, beyond }) {
    // One paste is one step to undo, however many operations it takes.
    const group = beyond.length ? protocol.newOpId() : undefined;
    this.userEdited(changes, group);
    if (!beyond.length || this.isViewer || this.halted) return;
    // The paste's corners (a big paste has too many cells to spread into Math.min's arguments).
    let [top, left, lastRow, lastCol] = [Infinity, Infinity, -1, -1];
    for (const c of [changes[0] ?? beyond[0], ...beyond]) {
      [top, left, lastRow, lastCol] = [Math.min(top, c.row), Math.min(left, c.col), Math.max(lastRow, c.row), Math.max(lastCol, c.col)];
    }
    const sheet = this.sheet;
    const [rowCount, colCount] = [sheet.rowIds.length, sheet.colIds.length];
    const addRows = Math.max(0, Math.min(lastRow + 1, this.limits.maxRows) - rowCount);
    const addCols = Math.max(0, Math.min(lastCol + 1, this.limits.maxCols) - colCount);
    const fits = beyond.filter((c) => c.row < rowCount + addRows && c.col < colCount + addCols);
    const inserts = [...this.insertOperations("col", addCols, group), ...this.insertOperations("row", addRows, group)];
    for (const operation of inserts) this.edits.add(operation);
    if (fits.length) {
      const rest = { sheet: sheet.id, rowId: sheet.rowIds[top], colId: sheet.colIds[left], waitFor: inserts.map((o) => o.op), ...this.tags(group) };
      rest.cells = fits.map((c) => [c.row - top, c.col - left, c.value]);
      this.edits.add({ op: `paste-${protocol.newOpId()}`, message: null, paste: rest });
    }
    const lost = [];
    if (lastRow >= this.limits.maxRows) lost.push(`${plural(lastRow + 1 - this.limits.maxRows, "row")} (a sheet holds at most ${plural(this.limits.maxRows, "row")})`);
    if (lastCol >= this.limits.maxCols) lost.push(`${plural(lastCol + 1 - this.limits.maxCols, "column")} (a sheet holds at most ${plural(this.limits.maxCols, "column")})`);
    const grows = [addRows && plural(addRows, "row"), addCols && plural(addCols, "column")].filter(Boolean).join(" and ");
    const parts = [];
    if (grows) parts.push(`The workbook grows by ${grows} to fit the paste${this.live ? "" : " when the connection is back"}.`);
    if (lost.length) parts.push(`Not pasted: the last ${lost.join(" and the last ")}.`);
    this.notify(parts.join(" "), { sticky: lost.length > 0 });
    this.pump();
    this.showConnection();
  }

  /** Operations inserting `count` rows or columns at the end of the sheet shown, within the per-insert limit (and in `group`). */
  insertOperations(axis, count, group) {
    const operations = [];
    for (let left = count; left > 0; left -= this.limits.maxInsertCount) {
      const n = Math.min(left, this.limits.maxInsertCount);
      operations.push(axis === "row" ? protocol.insertRows(this.shownId, null, n, this.tags(group)) : protocol.insertCols(this.shownId, null, n, this.tags(group)));
    }
    return operations;
  }

  /**
   * Writes each paste rest whose inserts the server has answered, where the paste put it. Its writes
   * take its place in the outbox (ahead of an undo queued since), with the tags the paste was made with.
   */
  resumePastes() {
    let resumed = false;
    for (const { op, paste } of this.edits.pastes()) {
      if (paste.waitFor.some((waiting) => this.edits.has(waiting))) continue;
      resumed = true;
      // The sheet pasted into (a rest an older page left has no `sheet`: the one holding its cell).
      const sheet = (paste.sheet !== undefined ? this.model.sheet(paste.sheet) : this.model.sheetWithRow(paste.rowId)) ?? null;
      const top = sheet?.rowIndex.get(paste.rowId);
      const left = sheet?.colIndex.get(paste.colId);
      const writes = [];
      for (const [dr, dc, value] of paste.cells) {
        const rowId = top === undefined ? undefined : sheet.rowIds[top + dr];
        const colId = left === undefined ? undefined : sheet.colIds[left + dc];
        if (rowId !== undefined && colId !== undefined) writes.push({ rowId, colId, value });
      }
      if (writes.length < paste.cells.length) {
        this.notify(`${plural(paste.cells.length - writes.length, "pasted cell")} could not be placed: the workbook did not grow enough (or the pasted-at cell or its sheet was deleted).`, { sticky: true });
      }
      const tags = paste.session ? { session: paste.session, group: paste.group } : this.tags(paste.group);
      this.edits.replace(op, writes.length ? this.setOperations(writes, tags, sheet.id) : []);
      this.refresh(writes);
    }
    if (!resumed) return;
    this.pump();
    this.showConnection();
  }

  /**
   * A set replaced cells someone else had written after the revision its sender saw: both are told,
   * with the cells and values, and can put the replaced values back (a new edit).
   */
  reportOverwritten(change) {
    if (!this.me) return;
    const mine = change.by.id === this.me.id;
    const sheet = change.sheet === null ? this.model.sheets[0] : this.model.sheet(change.sheet);
    const cells = change.overwritten.filter((o) => (mine ? o.by.id !== this.me.id : o.by.id === this.me.id) && positionIn(sheet, o));
    if (!cells.length) return;
    const names = cells.slice(0, MAX_NAMED_CELLS).map((o) => `${this.cellName(sheet, o)} (${JSON.stringify(o.value ?? "")})`);
    const more = cells.length > MAX_NAMED_CELLS ? ` and ${plural(cells.length - MAX_NAMED_CELLS, "more cell")}` : "";
    const others = [...new Set(cells.map((o) => o.by.name))].join(", ");
    const text = mine
      ? `Your edit made earlier replaced what ${others} wrote since in ${names.join(", ")}${more}.`
      : `${change.by.name}'s edit made earlier replaced what you wrote in ${names.join(", ")}${more}.`;
    this.alert(text, this.isViewer ? null : { label: "Put back", action: () => this.putBack(sheet.id, cells.map(({ rowId, colId, value }) => ({ rowId, colId, value }))) });
  }

  /**
   * Writes values cells of sheet `sheetId` held before [{rowId, colId, value}] as an ordinary edit, shown
   * pending at once; `rev`: the revision their formulas' text was read at (else the model's).
   */
  putBack(sheetId, writes, rev) {
    if (this.isViewer || this.halted || this.past) return;
    const sheet = this.model.sheet(sheetId);
    const here = writes.filter((w) => positionIn(sheet, w));
    this.send(here, undefined, sheetId, rev);
    this.refresh(here);
  }

  /** What a cell holds as the server confirmed it: its value, or its formula as {formula} (its text as this tab's grid has it). */
  contentOf(sheetId, rowId, colId) {
    const sheet = this.model.sheet(sheetId);
    const parts = sheet?.formula(rowId, colId);
    return parts ? { formula: formulaText(parts, sheetId, this.model) } : (sheet?.value(rowId, colId) ?? null);
  }

  /** A cell's name, "B3"; "Sheet2!B3" for a cell of a sheet not shown. */
  cellName(sheet, { rowId, colId }) {
    const at = positionIn(sheet, { rowId, colId });
    const name = `${sheet.titles[at.col]}${at.row + 1}`;
    return sheet.id === this.shownId ? name : qualifiedName(sheet.name, name);
  }

  /** A notice that stays until dismissed, with an optional action button. */
  alert(text, action) {
    const item = document.createElement("li");
    item.className = "alert";
    const message = document.createElement("span");
    message.textContent = text;
    item.append(message);
    if (action) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = action.label;
      button.addEventListener("click", () => {
        action.action();
        item.remove();
      });
      item.append(button);
    }
    const dismiss = document.createElement("button");
    dismiss.type = "button";
    dismiss.className = "link";
    dismiss.textContent = "Dismiss";
    dismiss.addEventListener("click", () => item.remove());
    item.append(dismiss);
    this.page.alerts.append(item);
  }

  /** The "add rows" bar under the grid: more empty rows at the bottom, as many as asked (within the limits). */
  userAddedRows(count) {
    if (this.isViewer || this.halted || this.past || !Number.isInteger(count) || count < 1) return;
    const room = this.limits.maxRows - this.sheet.rowIds.length;
    if (room <= 0) {
      this.notify(`A sheet holds at most ${plural(this.limits.maxRows, "row")}.`);
      return;
    }
    if (count > room) this.notify(`Adding ${plural(room, "row")}: a sheet holds at most ${plural(this.limits.maxRows, "row")}.`);
    const adding = Math.min(count, room);
    const group = adding > this.limits.maxInsertCount ? protocol.newOpId() : undefined; // one step to undo
    for (const operation of this.insertOperations("row", adding, group)) this.edits.add(operation);
    this.pump();
    this.showConnection();
  }

  userRestructured(action) {
    if (this.isViewer || this.halted || this.past) return;
    const { id: sheet, rowIds: rows, colIds: cols } = this.sheet;
    const ids = (order) => (action.positions || []).map((p) => order[p]).filter((id) => id !== undefined);
    const tags = this.tags();
    let operation;
    if (action.kind === "insert_rows") operation = protocol.insertRows(sheet, rows[action.before] ?? null, action.count, tags);
    else if (action.kind === "insert_cols") operation = protocol.insertCols(sheet, cols[action.before] ?? null, action.count, tags);
    else if (action.kind === "delete_rows" && ids(rows).length) operation = protocol.deleteRows(sheet, ids(rows), tags);
    else if (action.kind === "delete_cols" && ids(cols).length) operation = protocol.deleteCols(sheet, ids(cols), tags);
    if (!operation) return;
    this.edits.add(operation);
    this.pump();
    this.showConnection();
  }

  /**
   * Undo (`kind` "undo") or redo: asks the server to take back (or apply again) this tab's latest
   * step, after the tab's operations still waiting. What it changes arrives as a change like any other.
   */
  userWentBack(kind) {
    if (this.isViewer || this.halted || this.past || !this.model) return;
    this.edits.add(kind === "redo" ? protocol.redo(this.tags()) : protocol.undo(this.tags()));
    if (!this.live) this.notify(`${kind === "redo" ? "Redo" : "Undo"} waits for the connection to come back.`);
    this.pump();
    this.showConnection();
  }

  userSelected(ranges) {
    const sheet = this.sheet;
    if (!sheet) return;
    const byIds = [];
    for (const r of ranges) {
      const top = sheet.rowIds[r.top];
      const bottom = sheet.rowIds[r.bottom];
      const left = sheet.colIds[r.left];
      const right = sheet.colIds[r.right];
      if ([top, bottom, left, right].every((id) => id !== undefined)) byIds.push({ top, left, bottom, right });
    }
    this.selection = byIds;
    this.selectThrottle.push({ sheet: sheet.id, ranges: byIds });
    this.showActiveCell();
  }

  idsAt(row, col) {
    const rowId = this.sheet?.rowIds[row];
    const colId = this.sheet?.colIds[col];
    return rowId === undefined || colId === undefined ? null : { rowId, colId };
  }

  // ------------------------------------------------------------ sending

  /** Sends unsent operations in order, at most SEND_PER_SECOND a second. */
  pump() {
    if (!this.live) return;
    for (const entry of this.edits.unsent()) {
      if (this.sentThisSecond >= SEND_PER_SECOND) {
        this.schedulePump(1000);
        return;
      }
      if (!this.socket.send(entry.message)) return;
      entry.sent = true;
      if (this.sentThisSecond++ === 0) setTimeout(() => (this.sentThisSecond = 0), 1000);
    }
  }

  schedulePump(delay) {
    if (this.pumpTimer !== null) return;
    this.pumpTimer = setTimeout(() => {
      this.pumpTimer = null;
      this.pump();
    }, delay);
  }

  // ------------------------------------------------------------ connection

  connectionLost({ attempt }) {
    this.live = false;
    this.syncing = false;
    this.presence.clear();
    this.grid.setHighlights([]);
    this.showConnection();
    if (attempt % PROBE_EVERY === 0) this.probe();
  }

  /** After repeated refusals: is the workbook still there for us? (A refused handshake carries no reason.) */
  async probe() {
    const reach = await this.reach();
    if (reach === "logged out") this.loggedOut();
    else if (reach === "gone") {
      this.socket.stop();
      this.stopForGood("This workbook is no longer available to you.");
    }
  }

  /**
   * What this browser's session reaches now: "workbook" (it is logged in and has a role here), "logged
   * out", "gone" (no role, or no workbook), or null when the server cannot be reached. A small request:
   * the workbook's member list.
   */
  async reach() {
    try {
      const response = await fetch(protocol.membersUrl(this.config.workbookId), { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (response.ok) return "workbook";
      if (response.status === 401) return "logged out";
      if ([403, 404].includes(response.status)) return "gone";
    } catch {
      // unreachable: say nothing
    }
    return null;
  }

  closedForGood(code) {
    if (code === protocol.CLOSE_LOGIN_ENDED) {
      this.loginEnded();
      return;
    }
    const why = code === protocol.CLOSE_WORKBOOK_DELETED ? "This workbook was deleted." : "Your access to this workbook was removed.";
    this.stopForGood(why);
  }

  /**
   * The login the socket was opened with ended (4401): a logout, a new password, the account disabled
   * or deleted. This browser may still be logged in (its password changed here, which keeps the
   * session under a new key, or another tab logged in again): then it just reconnects. Otherwise the
   * person is asked to log in again, and the edits not sent yet stay in the browser's storage.
   *
   * A password change made in this browser closes the socket before its own answer has given the
   * browser the new key. A request sent with the old key meanwhile is answered as logged out, and that
   * answer deletes the browser's session cookie: the new key too, when it arrived first. So the page
   * waits a moment before it asks.
   */
  async loginEnded() {
    this.live = false;
    this.presence.clear();
    this.grid.setHighlights([]);
    this.showConnection();
    await new Promise((resolve) => setTimeout(resolve, LOGIN_SETTLE_MS));
    const reach = await this.reach();
    if (reach === "logged out") this.loggedOut();
    else if (reach === "gone") this.stopForGood("This workbook is no longer available to you.");
    else this.socket.start(); // logged in, or the server unreachable: the socket's retries find out
  }

  /** This browser is logged out: say so, with a way back, and come back by itself once it logs in again. */
  loggedOut() {
    if (this.loginNeeded || this.gone) return;
    this.loginNeeded = true;
    this.live = false;
    this.socket?.stop();
    this.presence.clear();
    if (this.grid) {
      this.grid.setReadOnly(true);
      this.grid.setHighlights([]);
    }
    this.drawTabs();
    const waiting = this.edits.waiting;
    const kept = waiting ? ` Your ${plural(waiting, "edit")} not sent yet ${waiting === 1 ? "is" : "are"} kept in this browser and sent when you are back.` : "";
    this.notify(`You are logged out.${kept}`, { sticky: true, link: { href: protocol.loginUrl(window.location.pathname), text: "Log in again" } });
    this.showConnection();
    const check = async () => {
      const reach = await this.reach();
      if (!this.loginNeeded) return;
      if (reach === "workbook") this.loggedIn();
      else if (reach === "gone") this.stopForGood("This workbook is no longer available to you.");
    };
    this.loginCheck = check;
    this.loginTimer = setInterval(check, LOGIN_CHECK_MS);
    window.addEventListener("focus", check);
  }

  /** Logged in again (in another tab): back to work. */
  loggedIn() {
    this.stopWatchingLogin();
    if (!this.model) {
      window.location.reload(); // the workbook never loaded
      return;
    }
    this.loginNeeded = false;
    this.updateReadOnly();
    this.page.notice.hidden = true;
    this.socket.start();
    this.showConnection();
  }

  stopWatchingLogin() {
    clearInterval(this.loginTimer);
    if (this.loginCheck) window.removeEventListener("focus", this.loginCheck);
    this.loginCheck = null;
  }

  stopForGood(why) {
    this.stopWatchingLogin();
    this.loginNeeded = false;
    this.gone = why;
    this.live = false;
    this.presence.clear();
    if (this.grid) {
      this.grid.setReadOnly(true);
      this.grid.setHighlights([]);
    }
    this.drawTabs();
    this.notify(why, { sticky: true });
    this.showConnection();
  }

  changeRole(role) {
    this.role = role;
    this.page.role.textContent = role;
    this.updateReadOnly();
    this.page.history.hidden = this.isViewer;
    this.cellHistory.render();
    this.versions.drawBanner();
  }

  /** The live grid (and the tabs) take edits unless this is a viewer, nothing can be sent, or an earlier version is shown. */
  updateReadOnly() {
    this.grid.setReadOnly(this.isViewer || this.halted || Boolean(this.past));
    this.drawTabs();
  }

  // ------------------------------------------------------------ the past: cell history and versions

  startHistoryPanels() {
    const panels = {
      opening: (panel) => {
        for (const other of [this.cellHistory, this.versions]) if (other !== panel) other.close({ refocus: false });
      },
      shown: () => this.layoutChanged(),
      closed: (refocus) => {
        this.layoutChanged();
        if (refocus) this.grid.listen();
      },
    };
    const canEdit = () => !this.isViewer && !this.halted;
    this.cellHistory = new CellHistory(this.page.cellHistory, {
      ...panels,
      workbookId: this.config.workbookId,
      canEdit,
      address: (sheetId, rowId, colId) => {
        const sheet = this.model.sheet(sheetId);
        return positionIn(sheet, { rowId, colId }) ? this.cellName(sheet, { rowId, colId }) : null;
      },
      current: (sheetId, rowId, colId) => this.contentOf(sheetId, rowId, colId),
      putBack: (sheetId, rowId, colId, value, rev) => this.putBack(sheetId, [{ rowId, colId, value }], rev),
    });
    const banner = { el: this.page.pastBanner, text: this.page.pastText, restore: this.page.pastRestore, back: this.page.pastBack };
    this.versions = new Versions(this.page.versions, banner, this.page.versionsButton, {
      ...panels,
      workbookId: this.config.workbookId,
      canEdit,
      currentRev: () => this.model.rev,
      showPast: (snapshot) => this.showPast(snapshot),
      showLive: () => this.showLive(),
      restore: (rev, description) => this.restoreVersion(rev, description),
    });
  }

  /** The context menu's "Show edit history" on the cell at a position of the live grid. */
  showCellHistory(row, col) {
    const ids = this.idsAt(row, col);
    if (ids) this.cellHistory.open(this.shownId, ids.rowId, ids.colId);
  }

  /** A side panel came or went: the grids fit the space left to them. */
  layoutChanged() {
    requestAnimationFrame(() => {
      this.grid.refreshSize();
      this.past?.refreshSize();
    });
  }

  /**
   * Shows an earlier version (a snapshot) read-only in the live grid's place; the live grid stays
   * underneath, hidden and out of reach of the keyboard, still taking the changes that arrive. Of its
   * sheets, the one shown live if it existed then, else the first (switching tabs shows another).
   */
  showPast(snapshot) {
    this.pastSnapshot = snapshot;
    const sheet = snapshot.sheets.find((s) => s.id === this.shownId) ?? snapshot.sheets[0];
    if (!sheet) return;
    const rows = sheet.rows.map((r) => r.values);
    this.page.pastGrid.setAttribute("aria-label", `Sheet “${sheet.name}” as it was then (read-only)`);
    if (sheet.id !== this.shownId) this.notify(`Sheet “${this.sheet.name}” did not exist then: showing “${sheet.name}” as it was.`);
    if (this.past) {
      this.past.load(rows, sheet.titles);
      return;
    }
    this.grid.closeEditor(); // what it holds is kept, as a click elsewhere keeps it
    this.grid.unlisten();
    this.page.pastGrid.hidden = false;
    this.page.gridArea.classList.add("showing-past");
    this.page.grid.inert = true;
    this.past = new PastGrid(this.page.pastGrid, { licenseKey: this.config.licenseKey, titles: sheet.titles, rows });
    this.updateReadOnly();
    this.showTools();
  }

  /** Back to the live workbook: the live grid, as it has been kept all along (the model and pending edits). */
  showLive() {
    if (!this.past) return;
    this.past.destroy();
    this.past = null;
    this.pastSnapshot = null;
    this.page.pastGrid.hidden = true;
    this.page.gridArea.classList.remove("showing-past");
    this.page.grid.inert = false;
    this.updateReadOnly();
    this.showTools();
    this.layoutChanged();
  }

  /** Undo, redo and adding rows are for the live workbook. */
  showTools() {
    for (const button of this.page.history.querySelectorAll("button")) button.disabled = Boolean(this.past);
    for (const control of this.page.addRows?.elements || []) control.disabled = Boolean(this.past);
  }

  /** Makes the workbook as it was at `rev`: one operation in the outbox, one change, undone like any edit. */
  restoreVersion(rev, description) {
    if (this.isViewer || this.halted) return;
    this.edits.add(protocol.restore(rev, this.tags()));
    this.notify(`Restoring ${description}${this.live ? "" : " when the connection is back"}. ${SHORTCUTS.undo} takes it back.`);
    this.pump();
    this.showConnection();
  }

  // ------------------------------------------------------------ sheets: the tabs

  startTabs() {
    this.tabs = new TabBar(
      { list: this.page.sheetTabs, add: this.page.sheetAdd, menu: this.page.sheetMenu, panel: this.page.gridArea },
      {
        show: (id, { pointer }) => this.showSheet(id, { pointer }),
        add: () => this.userAddedSheet(),
        rename: (id, name) => this.userRenamedSheet(id, name),
        duplicate: (id) => this.userDuplicatedSheet(id),
        move: (id, before) => this.userMovedSheet(id, before),
        remove: (id) => this.userDeletedSheet(id),
        keyboardLeft: () => this.grid.unlisten(),
        keyboardBack: () => this.grid.select(this.grid.selectionRanges(), { listen: true }),
      },
    );
    this.drawTabs();
    // A link to another sheet of this workbook followed in this page (or the address edited).
    window.addEventListener("hashchange", () => {
      const id = protocol.sheetInHash(window.location.hash);
      if (id !== null && this.model.sheet(id)) {
        this.showSheet(id);
        return;
      }
      if (id !== null) this.notify(`The sheet this link named is not in the workbook (deleted, or never there): still showing “${this.sheet.name}”.`);
      this.nameShownSheet();
    });
  }

  /** Tabs are added, renamed, moved and deleted by editors, on the live workbook. */
  get canChangeTabs() {
    return !this.isViewer && !this.halted && !this.past;
  }

  /** The tabs as shown: the confirmed sheets with this tab's sheet operations waiting laid over them. */
  shownTabs() {
    return tabsShown(this.model.sheets, this.edits.messages());
  }

  drawTabs() {
    if (!this.tabs || !this.model) return;
    this.tabs.draw(this.shownTabs(), this.shownId, { canEdit: this.canChangeTabs });
  }

  /** Draws the tabs once for all the changes to the outbox made in this task. */
  drawTabsSoon() {
    if (this.tabsQueued) return;
    this.tabsQueued = true;
    queueMicrotask(() => {
      this.tabsQueued = false;
      this.drawTabs();
    });
  }

  /** Loads the grid with the sheet shown (the model with the pending edits over it) and others' selections in it. */
  loadGrid() {
    this.deferred.clear();
    this.grid.load(this.displayRows(), this.sheet.titles);
    this.grid.setHighlights(this.presence.rectangles(this.sheet));
  }

  /**
   * Shows sheet `id` in the grid: a tab chosen (`pointer`: with the mouse, and the grid takes the
   * keyboard, as a spreadsheet's does), a link followed, or the sheet shown `gone` (an open editor's
   * text goes with it). Each sheet keeps the selection it had when it was last shown.
   */
  showSheet(id, { pointer = false, gone = false } = {}) {
    if (!this.model.sheet(id)) return;
    if (id === this.shownId && !gone) {
      if (pointer) this.grid.select(this.grid.selectionRanges(), { listen: true });
      return;
    }
    if (gone) {
      this.grid.cancelEditor();
      this.selections.delete(this.shownId);
    } else {
      this.grid.closeEditor(); // what it holds is written to the sheet it was opened on, as a click elsewhere would
      this.selections.set(this.shownId, this.grid.selectionRanges());
    }
    this.shownId = id;
    this.selection = [];
    this.selectThrottle.push({ sheet: id, ranges: [] }); // the others see this page on that sheet now
    const focused = document.activeElement;
    this.grid.batch(() => {
      this.loadGrid();
      this.grid.select(this.selections.get(id) || [], { listen: pointer });
    });
    if (!pointer && focused && focused !== document.body && document.activeElement !== focused) {
      // Handsontable focuses the cell it selects: a tab chosen from the keyboard (or the tab list) keeps it.
      focused.focus();
      this.grid.unlisten();
    }
    this.nameShownSheet();
    this.drawTabs();
    if (this.past) this.showPast(this.pastSnapshot);
    this.cellHistory.moved();
    this.showActiveCell();
  }

  /** The next (`by` 1) or previous (-1) sheet from the keyboard in the grid, which keeps the keyboard. */
  stepSheet(by) {
    const at = this.model.sheets.findIndex((sheet) => sheet.id === this.shownId);
    const next = this.model.sheets[at + by];
    if (next) this.showSheet(next.id, { pointer: true });
  }

  /** The page's address names the sheet shown, so that a reload or a copied link opens it (no new history entry). */
  nameShownSheet() {
    const hash = protocol.sheetHash(this.shownId);
    if (window.location.hash !== hash) window.history.replaceState(window.history.state, "", hash);
  }

  /** Sends one sheet operation (the tabs show it at once, as waiting). */
  sendSheetOperation(operation, { autoNamed = false, tries = 0 } = {}) {
    if (autoNamed) this.autoNamed.set(operation.op, tries);
    this.edits.add(operation);
    this.pump();
    this.showConnection();
  }

  /** "+": a new empty sheet at the end, named the first free of Sheet1, Sheet2, ... (shown once it is there). */
  userAddedSheet() {
    if (!this.canChangeTabs) return;
    const names = this.shownTabs().map((t) => t.name);
    const most = this.limits.maxSheets ?? MAX_SHEETS;
    if (names.length >= most) {
      this.notify(`A workbook holds at most ${plural(most, "sheet")}.`);
      return;
    }
    this.sendSheetOperation(protocol.addSheet(freeName(names), null, this.tags()), { autoNamed: true });
  }

  /** Renames a tab; returns why the name cannot be taken (also shown in the notice), or null once it is sent. */
  userRenamedSheet(id, name) {
    if (!this.canChangeTabs) return "Sheets cannot be renamed now.";
    const others = this.shownTabs().filter((t) => t.id !== id);
    const problem = nameProblem(name, others.map((t) => t.name));
    if (problem) {
      this.notify(problem);
      return problem;
    }
    this.sendSheetOperation(protocol.renameSheet(id, name, this.tags()));
    return null;
  }

  /** A copy of a sheet right after it, named "<name> (copy)" or the first free variant. */
  userDuplicatedSheet(id) {
    const tabs = this.shownTabs();
    const tab = tabs.find((t) => t.id === id);
    if (!this.canChangeTabs || !tab) return;
    const most = this.limits.maxSheets ?? MAX_SHEETS;
    if (tabs.length >= most) {
      this.notify(`A workbook holds at most ${plural(most, "sheet")}.`);
      return;
    }
    this.sendSheetOperation(protocol.duplicateSheet(id, copyName(tab.name, tabs.map((t) => t.name)), this.tags()), { autoNamed: true });
  }

  userMovedSheet(id, before) {
    if (!this.canChangeTabs || !this.model.sheet(id)) return;
    this.sendSheetOperation(protocol.moveSheet(id, before, this.tags()));
  }

  /** Deletes a sheet once the person confirms (undo brings it back with its cells); a shown one gives way to its neighbour at once. */
  userDeletedSheet(id) {
    const tabs = this.shownTabs().filter((t) => t.id !== null);
    const at = tabs.findIndex((t) => t.id === id);
    if (!this.canChangeTabs || at < 0) return;
    if (tabs.length < 2) {
      this.notify("A workbook keeps at least one sheet.");
      return;
    }
    if (!window.confirm(`Delete the sheet “${tabs[at].name}” and everything in it? ${SHORTCUTS.undo} brings it back.`)) return;
    this.sendSheetOperation(protocol.deleteSheet(id, this.tags()));
    if (id === this.shownId) {
      const left = tabs.filter((t) => t.id !== id);
      this.showSheet(left[Math.min(at, left.length - 1)].id);
    }
  }

  /** Sends again an add or duplicate refused because the name the page chose was taken meanwhile, under the next free name. */
  renameAndResend(message, tries) {
    const original = message?.type === "duplicate_sheet" ? this.model.sheet(message.sheet) : null;
    if (!message || !this.canChangeTabs || (message.type === "duplicate_sheet" && !original)) return;
    // The name refused is someone's now, though their change may not have arrived yet.
    const names = [...this.shownTabs().map((t) => t.name), message.name];
    const name = original ? copyName(original.name, names) : freeName(names);
    const operation =
      message.type === "duplicate_sheet"
        ? protocol.duplicateSheet(message.sheet, name, { session: message.session, group: message.group })
        : protocol.addSheet(name, message.before ?? null, { session: message.session, group: message.group });
    this.sendSheetOperation(operation, { autoNamed: true, tries });
  }

  // ------------------------------------------------------------ the page around the grid

  showConnection() {
    const el = this.page.connection;
    const waiting = this.edits.waiting;
    let state;
    let text;
    if (this.gone) {
      [state, text] = ["offline", "disconnected"];
    } else if (this.loginNeeded) {
      [state, text] = ["offline", "logged out"];
    } else if (this.live) {
      [state, text] = ["live", "live"];
    } else if (waiting) {
      [state, text] = ["offline", `offline — ${waiting} ${waiting === 1 ? "edit" : "edits"} waiting`];
    } else if (navigator.onLine === false) {
      [state, text] = ["offline", "offline"];
    } else {
      [state, text] = ["reconnecting", "reconnecting…"];
    }
    el.dataset.state = state;
    el.dataset.waiting = String(waiting);
    el.textContent = text;
  }

  showName(name) {
    this.page.name.textContent = name;
    document.title = `${name} · Tabula`;
  }

  /** Shows a notice for a while (or until dismissed, when sticky), with an optional link {href, text} after it. */
  notify(text, { sticky = false, link = null } = {}) {
    const notice = this.page.notice;
    notice.textContent = text;
    if (link) {
      const anchor = document.createElement("a");
      anchor.href = link.href;
      anchor.textContent = link.text;
      notice.append(" ", anchor);
    }
    notice.hidden = false;
    clearTimeout(this.noticeTimer);
    if (!sticky && !this.halted) this.noticeTimer = setTimeout(() => (notice.hidden = true), NOTICE_MS);
  }
}

function boot() {
  const config = JSON.parse(document.getElementById("tabula-config").textContent);
  const page = {
    name: document.getElementById("workbook-name"),
    role: document.getElementById("role"),
    connection: document.getElementById("connection"),
    presence: document.getElementById("presence"),
    notice: document.getElementById("notice"),
    alerts: document.getElementById("alerts"),
    grid: document.getElementById("grid"),
    addRows: document.getElementById("add-rows"),
    history: document.getElementById("history"),
    versionsButton: document.getElementById("versions-button"),
    gridArea: document.getElementById("grid-area"),
    pastGrid: document.getElementById("past-grid"),
    pastBanner: document.getElementById("past-banner"),
    pastText: document.getElementById("past-banner-text"),
    pastRestore: document.getElementById("past-restore"),
    pastBack: document.getElementById("past-back"),
    cellHistory: document.getElementById("cell-history"),
    versions: document.getElementById("versions"),
    sheetTabs: document.getElementById("sheet-tabs"),
    sheetAdd: document.getElementById("sheet-add"),
    sheetMenu: document.getElementById("sheet-menu"),
    cellName: document.getElementById("cell-name"),
    formulaInput: document.getElementById("formula-input"),
    formulaSuggestions: document.getElementById("formula-suggestions"),
    editorSuggestions: document.getElementById("editor-suggestions"),
  };
  page.notice.addEventListener("click", () => {
    if (!session.halted) page.notice.hidden = true;
  });
  const session = new WorkbookSession(config, page);
  page.addRows?.addEventListener("submit", (event) => {
    event.preventDefault();
    session.userAddedRows(Number(new FormData(page.addRows).get("count")));
  });
  // A click on undo or redo leaves the keyboard with the grid, as a spreadsheet's toolbar does: the
  // button does not take the focus. Reached with Tab, a button has the keyboard (Enter and Space press it).
  page.history.addEventListener("mousedown", (event) => event.target.closest("button") && event.preventDefault());
  // The panels beside the grid and the banner over it have the keyboard when they have the focus.
  for (const el of [page.history, page.versionsButton, page.pastBanner, page.cellHistory, page.versions]) {
    el.addEventListener("focusin", () => session.grid?.unlisten());
  }
  for (const button of page.history.querySelectorAll("button[data-history]")) {
    const kind = button.dataset.history;
    button.title = `${kind === "redo" ? "Redo" : "Undo"} (${SHORTCUTS[kind]})`;
    button.setAttribute("aria-keyshortcuts", ON_MAC ? { undo: "Meta+Z", redo: "Shift+Meta+Z" }[kind] : { undo: "Control+Z", redo: "Control+Y" }[kind]);
    button.addEventListener("click", (event) => {
      session.userWentBack(kind);
      if (event.detail > 0 && document.activeElement !== button) session.grid?.listen();
    });
  }
  window.tabula = session; // for the console and the browser tests: read-only inspection
  session.start();
}

boot();
