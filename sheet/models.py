"""Tabula's tables and their constraints. Reads live in selectors.py, writes in services/.

A sheet's members, rows, columns and changes are found through unique constraints and indexes that
all start with the sheet, so their foreign keys to the sheet have no index of their own: it would be
one more index to update on every write, and one PostgreSQL's planner can pick over the right one.
"""

from django.conf import settings
from django.db import models


class Sheet(models.Model):
    name = models.CharField(max_length=200)
    rev = models.BigIntegerField(default=0)
    # Row and column ids are issued per sheet, 1, 2, 3, ...: an id above these was never issued
    # (refused as unknown); one at or below it that has no row was deleted (its cells are dropped).
    rows_issued = models.BigIntegerField(default=0)
    cols_issued = models.BigIntegerField(default=0)
    row_count = models.BigIntegerField(default=0)
    col_count = models.BigIntegerField(default=0)
    # Changes at or below this revision are no longer kept (see the prune_changes command).
    history_floor = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return self.name


class Member(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner"
        EDITOR = "editor"
        VIEWER = "viewer"

    sheet = models.ForeignKey(Sheet, on_delete=models.CASCADE, related_name="members", db_index=False)  # see the module
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sheet_roles")
    role = models.CharField(max_length=10, choices=Role.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sheet", "user"], name="one_role_per_user_and_sheet"),
            models.CheckConstraint(condition=models.Q(role__in=["owner", "editor", "viewer"]), name="known_role"),
        ]

    def __str__(self):
        return f"{self.user} is {self.role} of {self.sheet}"


class Row(models.Model):
    """A row and all its cells: ``values`` is a JSON array of its cells in column order, ``null``
    for an empty one. It may stop short of the sheet's last column: the cells past its end are
    empty (a new row is ``[]``, and a column added at the right end changes no row).

    One record per row keeps a 1,000,000-cell sheet at 100,000 records that load in one query, and
    keeping the cells in column order lets a snapshot join each row's stored text instead of
    reordering every cell. The price: inserting or deleting a column rewrites the rows that hold
    cells right of it.
    """

    sheet = models.ForeignKey(Sheet, on_delete=models.CASCADE, related_name="rows", db_index=False)  # see the module
    rid = models.BigIntegerField()
    position = models.BigIntegerField()
    values = models.JSONField(default=list)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sheet", "rid"], name="row_id_unique_in_sheet")]
        indexes = [models.Index(fields=["sheet", "position"], name="row_order")]

    def __str__(self):
        return f"row {self.rid} of sheet {self.sheet_id}"


class Column(models.Model):
    sheet = models.ForeignKey(Sheet, on_delete=models.CASCADE, related_name="columns", db_index=False)  # see the module
    cid = models.BigIntegerField()
    position = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sheet", "cid"], name="column_id_unique_in_sheet")]
        indexes = [models.Index(fields=["sheet", "position"], name="column_order")]

    def __str__(self):
        return f"column {self.cid} of sheet {self.sheet_id}"


class Change(models.Model):
    """The change log: one entry per committed change, exactly what it applied."""

    sheet = models.ForeignKey(Sheet, on_delete=models.CASCADE, related_name="changes", db_index=False)  # see the module
    rev = models.BigIntegerField()
    op = models.CharField(max_length=64)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    author_name = models.CharField(max_length=150)
    at = models.DateTimeField()
    kind = models.CharField(max_length=20)
    data = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sheet", "rev"], name="one_change_per_rev"),
            models.UniqueConstraint(fields=["sheet", "op"], name="op_applied_once"),
        ]

    def __str__(self):
        return f"{self.sheet_id}@{self.rev} {self.kind} by {self.author_name}"
