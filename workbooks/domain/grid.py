"""A whole workbook in memory, changed only by applying changes in revision order.

This is the model every client keeps (the browser's is static/tabula/js/model.js); tests use it to
check that clients converge on the server's snapshot. Row and column ids are unique in the workbook,
so the cells of every sheet share one map.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .values import CellValue


@dataclass
class SheetGrid:
    name: str
    cols: list = field(default_factory=list)
    rows: list = field(default_factory=list)


class Grid:
    def __init__(self, *, rev: int, sheets: list[tuple[int, str, list, list[tuple[int, list[CellValue]]]]]):
        """``sheets``: (id, name, column ids, rows as (id, values)) of each sheet, in order."""
        self.rev = rev
        self.order: list[int] = []
        self.sheets: dict[int, SheetGrid] = {}
        self.cells: dict[tuple, CellValue] = {}
        for sid, name, columns, rows in sheets:
            self.order.append(sid)
            self.sheets[sid] = SheetGrid(name, list(columns), [row_id for row_id, _ in rows])
            for row_id, values in rows:
                for col_id, value in zip(columns, values, strict=True):
                    if value is not None:
                        self.cells[(row_id, col_id)] = value

    @classmethod
    def from_snapshot(cls, snapshot: dict) -> Grid:
        """Builds a grid from the JSON of ``GET /api/workbooks/{id}/`` (or an equivalent dict)."""
        return cls(
            rev=snapshot["rev"],
            sheets=[(s["id"], s["name"], [c["id"] for c in s["columns"]], [(r["id"], r["values"]) for r in s["rows"]]) for s in snapshot["sheets"]],
        )

    @property
    def first(self) -> SheetGrid:
        return self.sheets[self.order[0]]

    @property
    def rows(self) -> list:
        """The first sheet's rows (a v1 client's one grid)."""
        return self.first.rows

    @property
    def cols(self) -> list:
        return self.first.cols

    def apply(self, change: dict) -> None:
        """Applies one ``change`` message. Revisions must arrive in order, one after the other."""
        if change["rev"] != self.rev + 1:
            raise ValueError(f"change {change['rev']} does not follow revision {self.rev}")
        if change["kind"] == "batch":  # an undo, redo or restore: ordinary steps, in order
            for step in change["steps"]:
                self._apply_kind(step["kind"], step)
        else:
            self._apply_kind(change["kind"], change)
        for cell in change.get("computed", ()):  # formulas' values the change altered: the server's, never computed here
            self._put((cell["row"], cell["col"]), cell["value"])
        self.rev = change["rev"]

    def _put(self, key: tuple[int, int], value) -> None:
        if value is None:
            self.cells.pop(key, None)
        else:
            self.cells[key] = value

    def _apply_kind(self, kind: str, change: dict) -> None:
        sheet = self.sheets.get(change.get("sheet"))
        if kind == "set":
            for cell in change["cells"]:
                self._put((cell["row"], cell["col"]), cell["value"])
        elif kind == "insert_rows":
            self._insert(sheet.rows, change["before"], change["rows"])
        elif kind == "insert_cols":
            self._insert(sheet.cols, change["before"], change["cols"])
        elif kind == "delete_rows":
            gone = set(change["rows"])
            sheet.rows = [r for r in sheet.rows if r not in gone]
            self.cells = {k: v for k, v in self.cells.items() if k[0] not in gone}
        elif kind == "delete_cols":
            gone = set(change["cols"])
            sheet.cols = [c for c in sheet.cols if c not in gone]
            self.cells = {k: v for k, v in self.cells.items() if k[1] not in gone}
        elif kind in ("add_sheet", "duplicate_sheet"):
            self.sheets[change["sheet"]] = SheetGrid(change["name"], list(change["columns"]), list(change["rows"]))
            self._insert(self.order, change["before"], [change["sheet"]])
            if kind == "duplicate_sheet":  # the copy's columns and rows are the original's, in order
                original = self.sheets[change["from"]]
                cols, rows = dict(zip(original.cols, change["columns"], strict=True)), dict(zip(original.rows, change["rows"], strict=True))
                for (row, col), value in list(self.cells.items()):
                    if row in rows and col in cols:
                        self.cells[(rows[row], cols[col])] = value
        elif kind == "rename_sheet":
            sheet.name = change["name"]
        elif kind == "move_sheet":
            self.order.remove(change["sheet"])
            self._insert(self.order, change["before"], [change["sheet"]])
        elif kind == "delete_sheet":
            self.order.remove(change["sheet"])
            gone = self.sheets.pop(change["sheet"])
            rows = set(gone.rows)
            self.cells = {k: v for k, v in self.cells.items() if k[0] not in rows}

    @staticmethod
    def _insert(order: list, before, new_ids: list) -> None:
        at = len(order) if before is None else order.index(before)
        order[at:at] = new_ids

    def values(self, sheet: int | None = None) -> list[list[CellValue]]:
        """A sheet (the first by default) as rows of values in column order, as a snapshot lists them."""
        grid = self.sheets[sheet] if sheet is not None else self.first
        return [[self.cells.get((r, c)) for c in grid.cols] for r in grid.rows]

    def matches(self, snapshot: dict) -> bool:
        return (
            self.rev == snapshot["rev"]
            and self.order == [s["id"] for s in snapshot["sheets"]]
            and all(
                self.sheets[s["id"]].name == s["name"]
                and self.sheets[s["id"]].cols == [c["id"] for c in s["columns"]]
                and self.sheets[s["id"]].rows == [r["id"] for r in s["rows"]]
                and self.values(s["id"]) == [r["values"] for r in s["rows"]]
                for s in snapshot["sheets"]
            )
        )
