// The waiting edits of this tab, kept in the browser's storage so that a reload, a closed tab or a
// crash does not lose them: the page that next opens the workbook for this user sends them (their op
// ids make a resend of one the server already applied harmless). The tab's id is also the `session`
// of its operations (main.js): undo takes back what this tab did, after a reload too.
//
// Each tab keeps its own entry, `tabula.outbox/<user>/<workbook>/<tab>`, so that two open tabs never
// overwrite each other's. The tab id lives in sessionStorage, which a reload keeps: a reloaded tab
// takes its own entry back. A tab marks its entry as left when its page goes away and refreshes
// `alive` while it is open; an entry left, or not refreshed for ABANDONED_MS (a crash), is taken over
// by the next page of that user on that workbook, now or later. Two pages taking over the same entry
// both send its operations: the server applies each op id once. Operations name the sheet they change;
// those a page from before workbooks had sheets left name none and are sent as they are (the server
// applies them to the first sheet).

const PREFIX = "tabula.outbox";
const ALIVE_EVERY_MS = 5000;
const ABANDONED_MS = 20000;

function newTabId() {
  return Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("");
}

export class StoredOutbox {
  /** userId, workbookId: whose edits on which workbook; storage, session: localStorage and sessionStorage. */
  constructor(userId, workbookId, { storage = window.localStorage, session = window.sessionStorage, now = () => Date.now() } = {}) {
    this.prefix = `${PREFIX}/${userId}/${workbookId}/`;
    this.storage = storage;
    this.session = session;
    this.now = now;
    this.entries = [];
    this.failed = false; // the last save did not fit in the browser's storage
    this.started = now(); // orders the entries of several left tabs when one page takes them over
    this.tabId = this.#ownTabId();
    this.key = this.prefix + this.tabId;
  }

  #ownTabId() {
    const name = `${this.prefix}tab`;
    let id = this.session.getItem(name);
    const mine = id && this.#read(this.prefix + id);
    // A duplicated tab copies sessionStorage: an id whose entry another open tab still refreshes is not ours.
    if (!id || (mine && mine.alive !== 0 && this.now() - mine.alive < ABANDONED_MS)) {
      id = newTabId();
      this.session.setItem(name, id);
    }
    return id;
  }

  #read(key) {
    try {
      const stored = JSON.parse(this.storage.getItem(key));
      return stored && Array.isArray(stored.entries) ? stored : null;
    } catch {
      return null;
    }
  }

  /**
   * The stored operations this page takes on: its own tab's (after a reload; unless `own` is false)
   * and those of every tab that left them behind, oldest tab first. They become this tab's.
   */
  claim({ own = true } = {}) {
    const taken = [];
    const keys = [];
    for (let i = 0; i < this.storage.length; i += 1) {
      const key = this.storage.key(i);
      if (key && key.startsWith(this.prefix) && key !== `${this.prefix}tab`) keys.push(key);
    }
    const found = keys.map((key) => ({ key, stored: this.#read(key) })).filter((f) => f.stored);
    found.sort((a, b) => (a.stored.since ?? 0) - (b.stored.since ?? 0));
    for (const { key, stored } of found) {
      const abandoned = stored.alive === 0 || this.now() - stored.alive > ABANDONED_MS;
      if (key === this.key ? !own : !abandoned) continue;
      taken.push(...stored.entries);
      if (key !== this.key) this.storage.removeItem(key);
    }
    return taken;
  }

  /** Stores this tab's waiting operations ([{op, message, cells}], JSON-safe); false if they did not fit. */
  save(entries) {
    this.entries = entries;
    return this.#write(this.now());
  }

  #write(alive) {
    try {
      if (this.entries.length) {
        this.storage.setItem(this.key, JSON.stringify({ alive, since: this.started, entries: this.entries }));
      } else {
        this.storage.removeItem(this.key);
      }
      this.failed = false;
    } catch {
      this.failed = true; // over the storage quota (or storage disabled): the edits stay in memory
    }
    return !this.failed;
  }

  /** Keeps the entry marked as in use while the page is open; marks it left when the page goes. */
  watch(onAbandoned) {
    setInterval(() => {
      if (this.entries.length) this.#write(this.now());
      const more = this.claim({ own: false });
      if (more.length) onAbandoned(more);
    }, ALIVE_EVERY_MS);
    window.addEventListener("pagehide", () => this.#write(0));
    window.addEventListener("pageshow", (event) => event.persisted && this.#write(this.now()));
  }
}
