"""How an operation meets the workbook as it is now: which ids it may name and what it really applies.

The service hands these functions the facts it read under the workbook's lock (live ids, how many ids
were ever issued); they decide, and return what the change will carry.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, MutableMapping

from .errors import Invalid, NotFound, TooLarge
from .values import Author, CellValue, CellWrite, LastWrite, Overwrite

PALETTE = (
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
    "#469990", "#9a6324", "#800000", "#808000", "#000075", "#e6a800", "#2f4f4f",
)  # fmt: skip


def user_color(user_id: int) -> str:
    """A stable colour for a user, the same in every process and every tab.

    The stride is coprime with the palette's size, so consecutive users get distinct colours.
    """
    return PALETTE[(user_id * 5) % len(PALETTE)]


def column_title(position: int) -> str:
    """Spreadsheet letters for a 0-based column position: 0 -> A, 25 -> Z, 26 -> AA."""
    title = ""
    n = position + 1
    while n:
        n, rem = divmod(n - 1, 26)
        title = chr(ord("A") + rem) + title
    return title


def check_known(ids: Iterable[int], issued: int, what: str) -> None:
    """Refuse ids this workbook never issued; ids issued and deleted since are the caller's to drop."""
    for id_ in ids:
        if not 1 <= id_ <= issued:
            raise NotFound(f"unknown {what} id {id_}")


def applied_cells(
    cells: Iterable[CellWrite],
    *,
    live_rows: Collection[int],
    live_cols: Collection[int],
    rows_issued: int,
    cols_issued: int,
) -> tuple[CellWrite, ...]:
    """The writes that land: unknown ids refuse the whole set; deleted rows or columns drop the cell.

    A cell written twice in one operation keeps its last value, at the place of its first write.
    """
    cells = tuple(cells)
    check_known((c.row for c in cells), rows_issued, "row")
    check_known((c.col for c in cells), cols_issued, "column")
    latest: dict[tuple[int, int], CellWrite] = {}
    for cell in cells:
        if cell.row in live_rows and cell.col in live_cols:
            latest[(cell.row, cell.col)] = cell
    return tuple(latest.values())


def applied_deletes(ids: Iterable[int], *, live: Collection[int], issued: int, what: str) -> tuple[int, ...]:
    """The ids a delete really removes: unknown ids refuse it, already-deleted ones are dropped."""
    ids = tuple(ids)
    check_known(ids, issued, what)
    return tuple(dict.fromkeys(i for i in ids if i in live))


def check_insert_anchor(before: int | None, *, live: Collection[int], issued: int, what: str) -> None:
    if before is None:
        return
    check_known((before,), issued, what)
    if before not in live:
        raise NotFound(f"{what} {before} was deleted; insert somewhere else")


def check_capacity(current: int, adding: int, limit: int, what: str) -> None:
    if current + adding > limit:
        raise TooLarge(f"a workbook holds at most {limit} {what}; it has {current}")


def check_area(rows: int, cols: int, limit: int) -> None:
    """A workbook's rows times columns within the cell limit, whatever the shape."""
    if rows * cols > limit:
        raise TooLarge(f"a workbook holds at most {limit:,} cells (rows x columns); this would be {rows:,} x {cols:,}")


def check_base_rev(base: int | None, latest: int) -> None:
    """A ``set``'s revision is one the workbook has reached."""
    if base is not None and base > latest:
        raise Invalid(f"rev {base} is ahead of the workbook (revision {latest})")


def overwritten(
    cells: Iterable[CellWrite],
    *,
    base: int,
    sender: Author,
    last_writes: MutableMapping[tuple[int, int], LastWrite],
    value_at: Callable[[CellWrite], CellValue],
) -> tuple[Overwrite, ...]:
    """The cells of a ``set`` made against revision ``base`` that replace what someone else wrote
    after it. Writing the value a cell already holds replaces nothing, so is not reported.

    ``last_writes`` is who wrote each cell last, as far back as it goes; ``value_at`` what a cell
    holds before this ``set``.
    """
    found = []
    for cell in cells:
        last = last_writes.get((cell.row, cell.col))
        if last is None or last.rev <= base or last.by.id == sender.id:
            continue
        old = value_at(cell)
        if old != cell.value or type(old) is not type(cell.value):
            found.append(Overwrite(cell.row, cell.col, last.by, last.rev, old))
    return tuple(found)


def record_writes(last_writes: MutableMapping[tuple[int, int], LastWrite], cells: Iterable[CellWrite], write: LastWrite) -> None:
    """Notes ``write`` as the last of each of ``cells``."""
    for cell in cells:
        last_writes[(cell.row, cell.col)] = write
