"""Sheets: each workbook gets its tabs, the ones it has now becoming its first, ``Sheet1`` (id 1),
which holds all its rows and columns; the rows and columns counts move from the workbook to the
sheet. Backwards, every sheet but the first of each workbook is lost (v1 had one grid)."""

import django.db.models.deletion
from django.db import migrations, models

from workbooks.services.positions import GAP


def first_sheets(apps, schema_editor):
    schema_editor.execute(
        "INSERT INTO workbooks_sheet (workbook_id, sid, name, position, row_count, col_count, deleted_rev) "
        f"SELECT id, 1, 'Sheet1', {GAP}, row_count, col_count, NULL FROM workbooks_workbook"
    )
    schema_editor.execute("UPDATE workbooks_workbook SET sheets_issued = 1")


def counts_back(apps, schema_editor):
    schema_editor.execute(
        "UPDATE workbooks_workbook SET row_count = s.row_count, col_count = s.col_count FROM workbooks_sheet s "
        "WHERE s.workbook_id = workbooks_workbook.id AND s.sid = 1"
    )


def other_sheets_dropped(apps, schema_editor):
    for table in ("workbooks_row", "workbooks_column"):
        schema_editor.execute(f"DELETE FROM {table} WHERE sheet <> 1")  # noqa: S608 (constants)


class Migration(migrations.Migration):
    dependencies = [("workbooks", "0002_from_v1_sheets")]

    operations = [
        migrations.AddField(model_name="workbook", name="sheets_issued", field=models.BigIntegerField(default=0)),
        migrations.CreateModel(
            name="Sheet",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("sid", models.BigIntegerField()),
                ("name", models.CharField(max_length=31)),
                ("position", models.BigIntegerField()),
                ("row_count", models.BigIntegerField(default=0)),
                ("col_count", models.BigIntegerField(default=0)),
                ("deleted_rev", models.BigIntegerField(blank=True, null=True)),
                (
                    "workbook",
                    models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="sheets", to="workbooks.workbook"),
                ),
            ],
            options={"constraints": [models.UniqueConstraint(fields=("workbook", "sid"), name="sheet_id_unique_in_workbook")]},
        ),
        migrations.RunPython(first_sheets, counts_back),
        migrations.RemoveField(model_name="workbook", name="row_count"),
        migrations.RemoveField(model_name="workbook", name="col_count"),
        migrations.AddField(model_name="row", name="sheet", field=models.BigIntegerField(default=1), preserve_default=False),
        migrations.AddField(model_name="column", name="sheet", field=models.BigIntegerField(default=1), preserve_default=False),
        migrations.RemoveConstraint(model_name="column", name="column_slot_unique_in_workbook"),
        migrations.AddConstraint(
            model_name="column", constraint=models.UniqueConstraint(fields=("workbook", "sheet", "slot"), name="workbook_column_slot_unique")
        ),
        migrations.RemoveIndex(model_name="row", name="workbook_row_order"),
        migrations.AddIndex(model_name="row", index=models.Index(fields=["workbook", "sheet", "position"], name="workbook_row_order")),
        migrations.RemoveIndex(model_name="column", name="workbook_column_order"),
        migrations.AddIndex(model_name="column", index=models.Index(fields=["workbook", "sheet", "position"], name="workbook_column_order")),
        migrations.RunPython(migrations.RunPython.noop, other_sheets_dropped),
    ]
