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

  /** users: everyone on the workbook ([{id, name, color, sheet, ranges}]), me included. */
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
      li.style.color = textColorOn(user.color);
      li.dataset.userId = String(user.id);
      return li;
    });
    this.list.replaceChildren(...items);
  }

  /**
   * The others' selections in `sheet` (the sheet shown) at today's positions: [{top, left, bottom,
   * right, color, name}]. Only those of users on that sheet; a range whose corner rows or columns are
   * gone is not drawn.
   */
  rectangles(sheet) {
    const out = [];
    if (!sheet) return out;
    for (const user of this.others) {
      if (user.sheet !== sheet.id) continue;
      for (const range of user.ranges) {
        const rows = [sheet.rowIndex.get(range.top), sheet.rowIndex.get(range.bottom)];
        const cols = [sheet.colIndex.get(range.left), sheet.colIndex.get(range.right)];
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

/**
 * The text colour that reads best on a background "#rrggbb": black or white, whichever has the
 * higher WCAG 2 contrast ratio with it. Every colour has at least 4.58:1 with one of the two.
 */
export function textColorOn(background) {
  const m = /^#([0-9a-f]{6})$/i.exec(background || "");
  if (!m) return "#000";
  const luminance = relativeLuminance(m[1]);
  // Contrast is (lighter + 0.05) / (darker + 0.05); black's luminance is 0, white's 1.
  return (luminance + 0.05) / 0.05 >= 1.05 / (luminance + 0.05) ? "#000" : "#fff";
}

/** WCAG 2's relative luminance of "rrggbb". */
function relativeLuminance(hex) {
  const [r, g, b] = [0, 2, 4].map((i) => {
    const c = parseInt(hex.slice(i, i + 2), 16) / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
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
