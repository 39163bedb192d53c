"""Where new rows and columns go in their order, writing as few records as possible.

Rows and columns are ordered by ``position``, integers with room between neighbours: records are
created GAP apart, and new ones go evenly between the two they are inserted between, so an insert
writes only the new records, whatever the workbook's size. When two neighbours have no room left (a
few dozen inserts at one spot), the records around the spot are spread out again, in a window that
doubles until it has room for them: a handful of records at a time, never the whole workbook.

Deleted records (tombstones) keep their positions and take part in the order like any other, so an
undone delete comes back between the same neighbours.
"""

from __future__ import annotations

from django.db.models import Max

GAP = 1 << 32  # 2**63 / GAP: two billion rows appended before a position would overflow
MIN_ROOM = 1 << 10  # a respread leaves at least this much between neighbours
FIRST_WINDOW = 8


def created(count: int) -> list[int]:
    """The positions of a new workbook's ``count`` rows or columns."""
    return [GAP * (i + 1) for i in range(count)]


def room_for(model, scope: dict, count: int, *, before: int | None) -> list[int]:
    """``count`` increasing positions for new records of ``model`` among those of ``scope`` (filter
    arguments: a sheet's rows, a workbook's sheets) before the record at position ``before`` (at the
    end when None), spreading neighbours out when there is no room between them."""
    records = model.objects.filter(**scope)
    if before is None:
        last = records.aggregate(m=Max("position"))["m"] or 0
        return [last + GAP * (i + 1) for i in range(count)]
    previous = records.filter(position__lt=before).order_by("-position").values_list("position", flat=True).first() or 0
    step = (before - previous) // (count + 1)
    if step >= 1:
        return [previous + step * (i + 1) for i in range(count)]
    return _respread(model, scope, count, before)


def _respread(model, scope: dict, count: int, before: int) -> list[int]:
    """Moves the records around ``before`` apart (``size`` of them on each side, doubling until the
    range they span has room for them and the new ones) and returns the new records' positions."""
    records = model.objects.filter(**scope)
    size = max(FIRST_WINDOW, count)
    while True:
        left = list(records.filter(position__lt=before).order_by("-position").values_list("pk", "position")[: size + 1])
        right = list(records.filter(position__gte=before).order_by("position").values_list("pk", "position")[: size + 1])
        low = left.pop()[1] if len(left) > size else 0
        high = right.pop()[1] if len(right) > size else None
        moved = [pk for pk, _ in reversed(left)] + [None] * count + [pk for pk, _ in right]
        step = GAP if high is None else (high - low) // (len(moved) + 1)
        if step >= MIN_ROOM:  # at the latest when the window reaches the end (high is None)
            break
        size *= 2
    placed = {pk: low + step * (i + 1) for i, pk in enumerate(moved) if pk is not None}
    model.objects.bulk_update([model(pk=pk, position=p) for pk, p in placed.items()], ["position"], batch_size=1000)
    start = len(left)
    return [low + step * (start + i + 1) for i in range(count)]
