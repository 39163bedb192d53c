"""Tabula's tables and their constraints. Reads live in selectors.py, writes in services/.

A workbook's members, rows, columns and changes are found through unique constraints and indexes that
all start with the workbook, so their foreign keys to the workbook have no index of their own: it would be
one more index to update on every write, and one PostgreSQL's planner can pick over the right one.
"""

from django.conf import settings
from django.db import models


class Workbook(models.Model):
    name = models.CharField(max_length=200)
    rev = models.BigIntegerField(default=0)
    # Sheet, row and column ids are issued per workbook, 1, 2, 3, ...: an id above these was never
    # issued (refused as unknown); one at or below it that has no record was deleted.
    sheets_issued = models.BigIntegerField(default=0)
    rows_issued = models.BigIntegerField(default=0)
    cols_issued = models.BigIntegerField(default=0)
    # Changes at or below this revision are no longer kept (see the prune_changes command).
    history_floor = models.BigIntegerField(default=0)
    # Whether a formula was ever written: until then no change goes through the formula engine
    # (services/engines.py), and a workbook of literals costs what it did before formulas existed.
    has_formulas = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return self.name


class Sheet(models.Model):
    """A tab of a workbook: ``sid`` is its id on the wire. Its rows and columns name it by ``sid``.
    ``position`` orders the tabs (with room between them, as rows). A deleted sheet stays, with its
    rows and columns, as a tombstone (``deleted_rev``), so undo brings it back whole; names are
    unique among the live sheets, case-insensitively (checked under the workbook's lock)."""

    workbook = models.ForeignKey(Workbook, on_delete=models.CASCADE, related_name="sheets", db_index=False)  # see the module
    sid = models.BigIntegerField()
    name = models.CharField(max_length=31)
    position = models.BigIntegerField()
    row_count = models.BigIntegerField(default=0)  # live rows and columns, for the limits
    col_count = models.BigIntegerField(default=0)
    deleted_rev = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workbook", "sid"], name="sheet_id_unique_in_workbook")]

    def __str__(self):
        return self.name


class Member(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner"
        EDITOR = "editor"
        VIEWER = "viewer"

    workbook = models.ForeignKey(Workbook, on_delete=models.CASCADE, related_name="members", db_index=False)  # see the module
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="workbook_roles")
    role = models.CharField(max_length=10, choices=Role.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workbook", "user"], name="one_role_per_user_and_workbook"),
            models.CheckConstraint(condition=models.Q(role__in=["owner", "editor", "viewer"]), name="member_role_known"),
        ]

    def __str__(self):
        return f"{self.user} is {self.role} of {self.workbook}"


class Row(models.Model):
    """A row and all its cells: ``values`` is a JSON array of its cells, each at its column's
    ``slot``, ``null`` for an empty one. It may stop short of the workbook's highest slot: the cells past
    its end are empty (a new row is ``[]``).

    One record per row keeps a 1,000,000-cell workbook at 100,000 records that load in one query. Cells
    sit at their column's slot, not at its place in the column order, so inserting or deleting a
    column rewrites no row; as long as the columns' slots run 0, 1, 2, ... left to right (a workbook
    whose columns were only ever added at the right) a snapshot joins each row's stored text as it is.

    ``position`` orders the rows, with room between neighbours (see ``services.positions``), so an
    insert writes only the new rows. A deleted row stays, with its cells and its position, as a
    tombstone (``deleted_rev``, the revision that deleted it), so undoing the delete brings it back
    where it was; ``prune_changes`` removes tombstones older than the history it keeps.
    """

    workbook = models.ForeignKey(Workbook, on_delete=models.CASCADE, related_name="rows", db_index=False)  # see the module
    sheet = models.BigIntegerField()  # the sid of its Sheet
    rid = models.BigIntegerField()
    position = models.BigIntegerField()
    values = models.JSONField(default=list)
    deleted_rev = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workbook", "rid"], name="row_id_unique_in_workbook")]
        indexes = [models.Index(fields=["workbook", "sheet", "position"], name="workbook_row_order")]

    def __str__(self):
        return f"row {self.rid} of workbook {self.workbook_id}"


class Column(models.Model):
    """A column: ``slot`` is where its cells sit in every row's ``values``, for as long as the column
    exists (a new column takes the lowest slot no other column holds, live or deleted). Deleted
    columns stay as tombstones, their cells in the rows, as deleted rows do."""

    workbook = models.ForeignKey(Workbook, on_delete=models.CASCADE, related_name="columns", db_index=False)  # see the module
    sheet = models.BigIntegerField()  # the sid of its Sheet
    cid = models.BigIntegerField()
    position = models.BigIntegerField()
    slot = models.IntegerField()
    deleted_rev = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workbook", "cid"], name="column_id_unique_in_workbook"),
            models.UniqueConstraint(fields=["workbook", "sheet", "slot"], name="workbook_column_slot_unique"),
        ]
        indexes = [models.Index(fields=["workbook", "sheet", "position"], name="workbook_column_order")]

    def __str__(self):
        return f"column {self.cid} of workbook {self.workbook_id}"


class Change(models.Model):
    """The change log: one entry per committed change, exactly what it applied (``data``, as sent),
    and what it replaced (``replaced``, never sent: what undo and the history need to go back)."""

    workbook = models.ForeignKey(Workbook, on_delete=models.CASCADE, related_name="changes", db_index=False)  # see the module
    rev = models.BigIntegerField()
    op = models.CharField(max_length=64)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    author_name = models.CharField(max_length=150)
    at = models.DateTimeField()
    kind = models.CharField(max_length=20)
    data = models.JSONField(default=dict)
    replaced = models.JSONField(default=dict)
    # The operation's session (its sender's browser tab, scoped to the author) and group: undo finds
    # the changes of one author's session through them (services/undo.py).
    session = models.CharField(max_length=64, default="", blank=True)
    group = models.CharField(max_length=64, default="", blank=True)
    # An undo's or redo's ``undo_of`` / ``redo_of`` (also in ``data``), apart so that replaying a
    # session's undo list reads no change's data.
    undo_of = models.BigIntegerField(null=True, blank=True)
    redo_of = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workbook", "rev"], name="one_change_per_workbook_rev"),
            models.UniqueConstraint(fields=["workbook", "op"], name="workbook_op_applied_once"),
        ]
        indexes = [models.Index(fields=["workbook", "author", "session", "rev"], name="workbook_change_by_session")]

    def __str__(self):
        return f"{self.workbook_id}@{self.rev} {self.kind} by {self.author_name}"


class CellEdit(models.Model):
    """One cell written by one change (a ``set``, or a step of an undo, redo or restore): the value it
    wrote and the value it replaced. The history of a cell and the workbook as it was at an earlier
    revision read these, through the primary key, rather than every change's JSON. ``prune_changes``
    drops them with their changes."""

    pk = models.CompositePrimaryKey("workbook", "row", "col", "rev")
    # No constraint in the database either: it checked every row inserted against the workbook (which
    # the write path holds locked) one by one, 0.28 s of a 10,000-cell paste's 0.5 s on PostgreSQL.
    # Django still deletes a workbook's records with it (CASCADE), and only the write path adds them.
    workbook = models.ForeignKey(Workbook, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False)
    row = models.BigIntegerField()
    col = models.BigIntegerField()
    rev = models.BigIntegerField()
    value = models.JSONField(null=True)
    old = models.JSONField(null=True)

    def __str__(self):
        return f"{self.workbook_id}@{self.rev} ({self.row}, {self.col})"


class Refusal(models.Model):
    """An operation refused for what the workbook was then (nothing to undo, an insert before a deleted
    row, past a limit): the same op id sent again (by a client that did not see the answer) gets the
    same answer, even when the workbook would take it now, so that no op id is both refused and applied.
    Kept as long as the changes around it (``prune_changes``)."""

    workbook = models.ForeignKey(Workbook, on_delete=models.CASCADE, related_name="+", db_index=False)  # see the module
    op = models.CharField(max_length=64)
    code = models.CharField(max_length=20)
    message = models.TextField()
    rev = models.BigIntegerField()  # the workbook's revision when it was refused

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workbook", "op"], name="one_refusal_per_workbook_op")]

    def __str__(self):
        return f"{self.workbook_id}: {self.op} refused ({self.code})"
