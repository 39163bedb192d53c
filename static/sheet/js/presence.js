// Who else is here: their names in their colours, and their selections (held by ids, drawn at
// whatever positions those ids have now). Names only ever go into the page as text.

const SELECT_INTERVAL_MS = 100; // at most 10 select messages a second

export class Presence {
  constructor(listElement) {
    this.list = listElement;
    this.me = null;
    this.others = [];
  }

  setMe(me) {
    this.me = me;
  }

  /** users: everyone on the sheet ([{id, name, color, ranges}]), me included. */
  update(users) {
    this.others = users.filter((u) => !this.me || u.id !== this.me.id);
    this.#render();
  }

  clear() {
    this.others = [];
    this.#render();
  }

  #render() {
    const items = this.others.map((user) => {
      const li = document.createElement("li");
      li.textContent = user.name;
      li.title = `${user.name} is here`;
      li.style.backgroundColor = user.color;
      li.style.color = readableOn(user.color);
      li.dataset.userId = String(user.id);
      return li;
    });
    this.list.replaceChildren(...items);
  }

  /**
   * The others' selections at today's positions: [{top, left, bottom, right, color, name}].
   * A range whose corner rows or columns are gone is not drawn.
   */
  rectangles(model) {
    const out = [];
    for (const user of this.others) {
      for (const range of user.ranges) {
        const rows = [model.rowIndex.get(range.top), model.rowIndex.get(range.bottom)];
        const cols = [model.colIndex.get(range.left), model.colIndex.get(range.right)];
        if ([...rows, ...cols].some((p) => p === undefined)) continue;
        out.push({
          top: Math.min(...rows),
          bottom: Math.max(...rows),
          left: Math.min(...cols),
          right: Math.max(...cols),
          color: user.color,
          name: user.name,
        });
      }
    }
    return out;
  }
}

/** Dark text on light colours, white on dark ones. */
function readableOn(hex) {
  const m = /^#([0-9a-f]{6})$/i.exec(hex || "");
  if (!m) return "#fff";
  const [r, g, b] = [0, 2, 4].map((i) => parseInt(m[1].slice(i, i + 2), 16));
  return 0.299 * r + 0.587 * g + 0.114 * b > 150 ? "#1f2328" : "#fff";
}

/** Calls send(latest) at most every SELECT_INTERVAL_MS, always ending with the latest value. */
export class Throttle {
  constructor(send, interval = SELECT_INTERVAL_MS) {
    this.send = send;
    this.interval = interval;
    this.last = 0;
    this.timer = null;
    this.latest = undefined;
  }

  push(value) {
    this.latest = value;
    if (this.timer !== null) return;
    const wait = Math.max(0, this.last + this.interval - performance.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      this.last = performance.now();
      this.send(this.latest);
    }, wait);
  }
}
