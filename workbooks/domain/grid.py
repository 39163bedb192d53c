"""A whole workbook in memory, changed only by applying changes in revision order.

This is the model every client keeps (the browser's is static/tabula/js/model.js); tests use it to
check that clients converge on the server's snapshot.
"""

from __future__ import annotations

from .values import CellValue


class Grid:
    def __init__(self, *, rev: int, columns: list, rows: list[tuple[int, list[CellValue]]]):
        self.rev = rev
        self.cols: list = list(columns)
        self.rows: list = [row_id for row_id, _ in rows]
        self.cells: dict[tuple, CellValue] = {}
        for row_id, values in rows:
            for col_id, value in zip(self.cols, values, strict=True):
                if value is not None:
                    self.cells[(row_id, col_id)] = value

    @classmethod
    def from_snapshot(cls, snapshot: dict) -> Grid:
        """Builds a grid from the JSON of ``GET /api/workbooks/{id}/`` (or an equivalent dict)."""
        return cls(
            rev=snapshot["rev"],
            columns=[c["id"] for c in snapshot["columns"]],
            rows=[(r["id"], r["values"]) for r in snapshot["rows"]],
        )

    def apply(self, change: dict) -> None:
        """Applies one ``change`` message. Revisions must arrive in order, one after the other."""
        if change["rev"] != self.rev + 1:
            raise ValueError(f"change {change['rev']} does not follow revision {self.rev}")
        if change["kind"] == "batch":  # an undo or redo: ordinary steps, in order
            for step in change["steps"]:
                self._apply_kind(step["kind"], step)
        else:
            self._apply_kind(change["kind"], change)
        self.rev = change["rev"]

    def _apply_kind(self, kind: str, change: dict) -> None:
        if kind == "set":
            for cell in change["cells"]:
                key = (cell["row"], cell["col"])
                if cell["value"] is None:
                    self.cells.pop(key, None)
                else:
                    self.cells[key] = cell["value"]
        elif kind == "insert_rows":
            self._insert(self.rows, change["before"], change["rows"])
        elif kind == "insert_cols":
            self._insert(self.cols, change["before"], change["cols"])
        elif kind == "delete_rows":
            gone = set(change["rows"])
            self.rows = [r for r in self.rows if r not in gone]
            self.cells = {k: v for k, v in self.cells.items() if k[0] not in gone}
        elif kind == "delete_cols":
            gone = set(change["cols"])
            self.cols = [c for c in self.cols if c not in gone]
            self.cells = {k: v for k, v in self.cells.items() if k[1] not in gone}

    @staticmethod
    def _insert(order: list, before, new_ids: list) -> None:
        at = len(order) if before is None else order.index(before)
        order[at:at] = new_ids

    def values(self) -> list[list[CellValue]]:
        """The grid as rows of values in column order, as a snapshot lists them."""
        return [[self.cells.get((r, c)) for c in self.cols] for r in self.rows]

    def matches(self, snapshot: dict) -> bool:
        return (
            self.rev == snapshot["rev"]
            and self.cols == [c["id"] for c in snapshot["columns"]]
            and self.rows == [r["id"] for r in snapshot["rows"]]
            and self.values() == [r["values"] for r in snapshot["rows"]]
        )
