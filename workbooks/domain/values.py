"""Value types that cross Tabula's boundaries: operations in, changes out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

RowId = int
ColId = int
CellValue = str | int | float | bool | None

ROLES = ("owner", "editor", "viewer")
WRITER_ROLES = frozenset({"owner", "editor"})


@dataclass(frozen=True)
class Limits:
    max_value_chars: int = 10_000
    max_formula_chars: int = 8_192
    max_message_bytes: int = 1024 * 1024
    max_cells_per_set: int = 10_000
    max_rows: int = 100_000
    max_cols: int = 1_000
    max_name_chars: int = 200
    max_insert_count: int = 10_000
    ops_per_second: int = 250
    ops_burst: int = 500
    http_ops_per_minute: int = 6_000
    max_sync_changes: int = 5_000
    max_cells: int = 10_000_000  # rows x columns of one workbook, all its sheets
    max_sheets: int = 200  # sheets of one workbook
    max_sync_bytes: int = 8 * 1024 * 1024  # what one changes or sync answer may send
    max_workbooks_per_user: int = 1_000  # workbooks one user owns
    creates_per_hour: int = 100  # workbooks one user may create in an hour
    max_members: int = 1_000  # people one workbook is shared with, its owner included


@dataclass(frozen=True)
class FormulaText:
    """A formula as a client typed it (A1 text starting with "="), read against the layout of the
    revision its ``set`` names."""

    text: str


@dataclass(frozen=True)
class CellWrite:
    row: RowId
    col: ColId
    value: CellValue


# Every operation may say which ``session`` (the sender's browser tab, scoped to the user) made it,
# and the ``group`` it belongs to: undo takes back the latest group of the user's session as one step.


@dataclass(frozen=True)
class SetCells:
    op: str
    cells: tuple[CellWrite, ...]
    # The revision the sender's grid showed, when it said: cells someone else wrote after it are
    # reported in the change as overwritten.
    rev: int | None = None
    session: str = ""
    group: str = ""
    sheet: int | None = None  # None: the first sheet (an operation of a v1 client)
    kind = "set"


@dataclass(frozen=True)
class InsertRows:
    op: str
    before: RowId | None
    count: int
    session: str = ""
    group: str = ""
    sheet: int | None = None  # None: the first sheet (an operation of a v1 client)
    kind = "insert_rows"


@dataclass(frozen=True)
class DeleteRows:
    op: str
    rows: tuple[RowId, ...]
    session: str = ""
    group: str = ""
    sheet: int | None = None  # None: the first sheet (an operation of a v1 client)
    kind = "delete_rows"


@dataclass(frozen=True)
class InsertCols:
    op: str
    before: ColId | None
    count: int
    session: str = ""
    group: str = ""
    sheet: int | None = None  # None: the first sheet (an operation of a v1 client)
    kind = "insert_cols"


@dataclass(frozen=True)
class DeleteCols:
    op: str
    cols: tuple[ColId, ...]
    session: str = ""
    group: str = ""
    sheet: int | None = None  # None: the first sheet (an operation of a v1 client)
    kind = "delete_cols"


@dataclass(frozen=True)
class Rename:
    op: str
    name: str
    session: str = ""
    group: str = ""
    kind = "rename"


# Sheet operations. ``before`` is the sheet the new or moved one goes before, None for the end.
NEXT = -1  # a duplicate's ``before`` when none is given: right after the original


@dataclass(frozen=True)
class AddSheet:
    op: str
    name: str
    before: int | None = None
    rows: int = 100
    cols: int = 26
    session: str = ""
    group: str = ""
    kind = "add_sheet"


@dataclass(frozen=True)
class DuplicateSheet:
    op: str
    sheet: int
    name: str
    before: int | None = NEXT
    session: str = ""
    group: str = ""
    kind = "duplicate_sheet"


@dataclass(frozen=True)
class RenameSheet:
    op: str
    sheet: int
    name: str
    session: str = ""
    group: str = ""
    kind = "rename_sheet"


@dataclass(frozen=True)
class MoveSheet:
    op: str
    sheet: int
    before: int | None
    session: str = ""
    group: str = ""
    kind = "move_sheet"


@dataclass(frozen=True)
class DeleteSheet:
    op: str
    sheet: int
    session: str = ""
    group: str = ""
    kind = "delete_sheet"


SheetOperation = AddSheet | DuplicateSheet | RenameSheet | MoveSheet | DeleteSheet


@dataclass(frozen=True)
class Undo:
    """Takes back the latest step of the sender's session not yet undone (``redo`` False), or
    re-applies the latest one undone (``redo`` True)."""

    op: str
    redo: bool = False
    session: str = ""
    group: str = ""

    @property
    def kind(self) -> str:
        return "redo" if self.redo else "undo"


@dataclass(frozen=True)
class Restore:
    """Makes the workbook as it was at revision ``rev``, as one new change."""

    op: str
    rev: int
    session: str = ""
    group: str = ""
    kind = "restore"


Operation = SetCells | InsertRows | DeleteRows | InsertCols | DeleteCols | Rename | SheetOperation | Undo | Restore


@dataclass(frozen=True)
class Sync:
    since: int


@dataclass(frozen=True)
class Ping:
    """A client's heartbeat, answered with ``pong``."""


@dataclass(frozen=True)
class Select:
    ranges: tuple[tuple[int, int, int, int], ...]
    sheet: int | None = None


@dataclass(frozen=True)
class Author:
    id: int
    name: str


@dataclass(frozen=True)
class Change:
    """One committed change: what an operation actually applied, at revision ``rev``.

    ``data`` holds the kind's own fields exactly as the wire carries them (``cells``, ``before``,
    ``rows``, ``cols`` or ``name``); ``replaced`` what the change replaced, which the wire does not
    carry: a ``set``'s ``values``, what each of its cells held before (in the order of ``cells``), and
    a rename's old ``name``. Deleted rows and columns keep their cells themselves (see models.Row).
    """

    rev: int
    op: str
    by: Author
    at: datetime
    kind: str
    data: dict = field(default_factory=dict)
    replaced: dict = field(default_factory=dict)
    session: str = ""  # the operation's, logged (not sent) so that undo finds a session's changes
    group: str = ""


@dataclass(frozen=True)
class LastWrite:
    """Who wrote a cell last, and at which revision."""

    rev: int
    by: Author


@dataclass(frozen=True)
class Overwrite:
    """A cell a ``set`` replaced that someone else had written after the revision its sender saw:
    ``value`` is what it held."""

    row: RowId
    col: ColId
    by: Author
    rev: int
    value: CellValue


@dataclass(frozen=True)
class Column:
    id: ColId
    title: str


@dataclass(frozen=True)
class SheetSnapshot:
    id: int
    name: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[RowId, tuple[CellValue, ...]], ...] | None  # None: not read (a head only)
    formulas: tuple[dict, ...] = ()  # its formula cells, as the wire lists them (contract v2, snapshot)


@dataclass(frozen=True)
class Snapshot:
    id: int
    name: str
    rev: int
    floor: int
    role: str
    sheets: tuple[SheetSnapshot, ...]


@dataclass(frozen=True)
class WorkbookSummary:
    id: int
    name: str
    rev: int
    role: str
    updated_at: datetime


@dataclass(frozen=True)
class PresenceEntry:
    """One connection's presence; the wire shows one entry per user (the latest selection wins)."""

    user_id: int
    name: str
    color: str
    selection: tuple = ()
    sheet: int | None = None  # the sheet of the selection
