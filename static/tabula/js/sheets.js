// The tabs as the page shows them: the confirmed sheets with this tab's sheet operations not yet
// answered laid over them (a rename shows at once, a deleted tab goes at once, an added one shows as
// waiting), as cell edits are laid over the model. And the rules for a sheet's name, as the server
// checks them (Excel's), so that a bad name is refused where it is typed.

export const MAX_NAME_CHARS = 31;
const FORBIDDEN = /[[\]:*?/\\]/;

const folded = (name) => name.toLowerCase();

/** Why `name` cannot name a sheet beside sheets named `others`, as a sentence; null when it can. */
export function nameProblem(name, others) {
  if (!name.trim()) return "A sheet's name cannot be empty.";
  if ([...name].length > MAX_NAME_CHARS) return `A sheet's name has at most ${MAX_NAME_CHARS} characters.`;
  if (FORBIDDEN.test(name)) return "A sheet's name cannot hold any of [ ] : * ? / \\";
  if (name.startsWith("'") || name.endsWith("'")) return "A sheet's name cannot start or end with an apostrophe.";
  if (others.some((other) => folded(other) === folded(name))) return `There is already a sheet named “${name}”.`;
  return null;
}

/** The first of Sheet1, Sheet2, ... that no sheet is named (names compare without case). */
export function freeName(names) {
  const taken = new Set(names.map(folded));
  for (let n = 1; ; n += 1) if (!taken.has(`sheet${n}`)) return `Sheet${n}`;
}

/** A copy's name: "<name> (copy)", else "(copy 2)", "(copy 3)"...: the first free one, the name shortened to fit 31 characters. */
export function copyName(name, names) {
  const taken = new Set(names.map(folded));
  for (let n = 1; ; n += 1) {
    const suffix = n === 1 ? " (copy)" : ` (copy ${n})`;
    let base = [...name].slice(0, MAX_NAME_CHARS - suffix.length).join("");
    if (base.endsWith("'")) base = base.replace(/'+$/, "") || "Sheet";
    const candidate = `${base}${suffix}`;
    if (!taken.has(folded(candidate))) return candidate;
  }
}

/**
 * The tabs to show, in order: [{id, name, pending}] from the confirmed sheets ([{id, name}]) and the
 * messages of the operations waiting for the server, oldest first. A sheet being added has no id yet:
 * its `id` is null and `op` names its operation. `pending` marks what the server has not confirmed.
 */
export function tabsShown(sheets, messages) {
  const tabs = sheets.map(({ id, name }) => ({ id, name, pending: false }));
  const at = (id) => tabs.findIndex((t) => t.id === id);
  const place = (before, fallback) => {
    const i = before === null || before === undefined ? -1 : at(before);
    return i < 0 ? fallback : i;
  };
  for (const message of messages) {
    if (!message) continue;
    switch (message.type) {
      case "add_sheet":
        tabs.splice(place(message.before, tabs.length), 0, { id: null, op: message.op, name: message.name, pending: true });
        break;
      case "duplicate_sheet": {
        const from = at(message.sheet);
        if (from >= 0) tabs.splice(place(message.before, from + 1), 0, { id: null, op: message.op, name: message.name, pending: true });
        break;
      }
      case "rename_sheet": {
        const i = at(message.sheet);
        if (i >= 0) tabs[i] = { ...tabs[i], name: message.name, pending: true };
        break;
      }
      case "move_sheet": {
        const from = at(message.sheet);
        if (from < 0 || message.before === message.sheet) break;
        const [tab] = tabs.splice(from, 1);
        tabs.splice(place(message.before, tabs.length), 0, { ...tab, pending: true });
        break;
      }
      case "delete_sheet": {
        const i = at(message.sheet);
        if (i >= 0) tabs.splice(i, 1);
        break;
      }
      default:
        break;
    }
  }
  return tabs;
}

/** A cell's name as a formula would write it on another sheet: Sheet2!B3, 'Q3 plan'!B3. */
export function qualifiedName(sheetName, cell) {
  const plain = /^[A-Za-z_][A-Za-z0-9_.]*$/.test(sheetName) && !/^[A-Za-z]{1,3}[0-9]+$/.test(sheetName);
  return `${plain ? sheetName : `'${sheetName.replaceAll("'", "''")}'`}!${cell}`;
}
