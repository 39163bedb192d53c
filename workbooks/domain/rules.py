"""How an operation meets the workbook as it is now: which ids it may name and what it really applies.

The service hands these functions the facts it read under the workbook's lock (live ids, how many ids
were ever issued); they decide, and return what the change will carry.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, MutableMapping

from .errors import Conflict, Invalid, NotFound, TooLarge
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
        holder = "workbook" if what == "sheets" else "sheet"
        raise TooLarge(f"a {holder} holds at most {limit} {what}; it has {current}")


def check_area(cells: int, limit: int) -> None:
    """A workbook's cells (rows times columns of each sheet) within the cell limit, whatever the shape."""
    if cells > limit:
        raise TooLarge(f"a workbook holds at most {limit:,} cells (rows x columns of its sheets); this would be {cells:,}")


SHEET_NAME_FORBIDDEN = frozenset("[]:*?/\\")
MAX_SHEET_NAME_CHARS = 31


def check_sheet_name(name: str, *, taken: Iterable[str]) -> None:
    """Excel's rule for a sheet's name (1 to 31 characters, none of ``[ ] : * ? / \\``, not starting
    or ending with an apostrophe), unique among the workbook's sheets whatever the case (``taken``:
    the other sheets' names)."""
    if not 1 <= len(name) <= MAX_SHEET_NAME_CHARS:
        raise Invalid(f"a sheet's name is 1 to {MAX_SHEET_NAME_CHARS} characters")
    if bad := sorted(SHEET_NAME_FORBIDDEN.intersection(name)):
        raise Invalid(f"a sheet's name cannot contain {' '.join(bad)}")
    if name.startswith("'") or name.endswith("'"):
        raise Invalid("a sheet's name cannot start or end with an apostrophe")
    if name.casefold() in {other.casefold() for other in taken}:
        raise Conflict(f"a sheet named “{name}” exists already")


def free_sheet_name(name: str, *, taken: Iterable[str]) -> str:
    """``name``, or when a sheet has it already, the first of ``name (2)``, ``name (3)``, ... that is free
    (cut to fit 31 characters): where a sheet comes back (an undone delete) under a name taken since."""
    used = {other.casefold() for other in taken}
    candidate, n = name, 1
    while candidate.casefold() in used:
        n += 1
        suffix = f" ({n})"
        candidate = name[: MAX_SHEET_NAME_CHARS - len(suffix)].rstrip("'") + suffix
    return candidate


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
