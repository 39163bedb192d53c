"""Each row's ``values`` goes from {column id: value} to a list in column order (see Row)."""

from django.db import migrations, models


def _column_keys(apps, sheet_id):
    Column = apps.get_model("sheet", "Column")
    return [str(cid) for cid in Column.objects.filter(sheet_id=sheet_id).order_by("position").values_list("cid", flat=True)]


def _convert(apps, convert):
    Sheet, Row = apps.get_model("sheet", "Sheet"), apps.get_model("sheet", "Row")
    for sheet_id in Sheet.objects.values_list("pk", flat=True).iterator():
        keys = _column_keys(apps, sheet_id)
        rows = list(Row.objects.filter(sheet_id=sheet_id).only("pk", "values"))
        for row in rows:
            row.values = convert(row.values, keys)
        Row.objects.bulk_update(rows, ["values"], batch_size=1000)


def to_lists(apps, schema_editor):
    def in_order(values, keys):
        cells = [values.get(key) for key in keys]
        while cells and cells[-1] is None:  # empty cells past the row's end need not be stored
            cells.pop()
        return cells

    _convert(apps, in_order)


def to_dicts(apps, schema_editor):
    _convert(apps, lambda values, keys: {key: value for key, value in zip(keys, values, strict=False) if value is not None})


class Migration(migrations.Migration):
    dependencies = [("sheet", "0001_initial")]

    operations = [
        migrations.AlterField(model_name="row", name="values", field=models.JSONField(default=list)),
        migrations.RunPython(to_lists, to_dicts),
    ]
