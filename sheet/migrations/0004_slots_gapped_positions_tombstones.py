"""Columns get a slot (where their cells sit in each row's ``values``), rows and columns positions with
room between them, and both a ``deleted_rev`` for tombstones (see Row and Column).

Forward: 0002 stored each row's cells in column order, so a column's slot is its rank in that order;
positions become (rank + 1) x GAP. Back: tombstones are removed (with their cells), and each row's
cells are put back in column order. (The slots' unique constraint comes in 0005: PostgreSQL will
not alter a table in the transaction that updated its rows.)
"""

from django.db import migrations, models

GAP = 1 << 32  # services.positions.GAP when this was written


def _ranked(records):
    return sorted(records, key=lambda r: r.position)


def forward(apps, schema_editor):
    # One statement per table (PostgreSQL, and SQLite from 3.33): the ranks by position, per sheet.
    for table, slot in (("sheet_column", ", slot = ranked.n - 1"), ("sheet_row", "")):
        schema_editor.execute(
            f"UPDATE {table} SET position = ranked.n * %s{slot} FROM "  # noqa: S608 (constants)
            f"(SELECT id, ROW_NUMBER() OVER (PARTITION BY sheet_id ORDER BY position, id) AS n FROM {table}) AS ranked "
            f"WHERE {table}.id = ranked.id",
            [GAP],
        )


def back(apps, schema_editor):
    Sheet, Row, Column = (apps.get_model("sheet", name) for name in ("Sheet", "Row", "Column"))
    for sheet_id in Sheet.objects.values_list("pk", flat=True).iterator():
        Row.objects.filter(sheet_id=sheet_id, deleted_rev__isnull=False).delete()
        Column.objects.filter(sheet_id=sheet_id, deleted_rev__isnull=False).delete()
        columns = _ranked(Column.objects.filter(sheet_id=sheet_id))
        slots = [c.slot for c in columns]
        for rank, column in enumerate(columns):
            column.position = rank
        Column.objects.bulk_update(columns, ["position"], batch_size=1000)
        rows = _ranked(Row.objects.filter(sheet_id=sheet_id).only("pk", "position", "values"))
        for rank, row in enumerate(rows):
            cells = [row.values[s] if s < len(row.values) else None for s in slots]
            while cells and cells[-1] is None:
                cells.pop()
            row.position, row.values = rank, cells
        Row.objects.bulk_update(rows, ["position", "values"], batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [("sheet", "0003_sheet_id_indexes_covered_by_constraints")]

    operations = [
        migrations.AddField(model_name="row", name="deleted_rev", field=models.BigIntegerField(blank=True, null=True)),
        migrations.AddField(model_name="column", name="deleted_rev", field=models.BigIntegerField(blank=True, null=True)),
        migrations.AddField(model_name="column", name="slot", field=models.IntegerField(default=0), preserve_default=False),
        migrations.RunPython(forward, back),
    ]
