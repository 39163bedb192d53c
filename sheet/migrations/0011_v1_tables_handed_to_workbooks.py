"""v1's tables go: workbooks' 0002 copied everything in them to the workbook tables."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("sheet", "0010_refusals"), ("workbooks", "0002_from_v1_sheets")]

    operations = [migrations.DeleteModel(name=name) for name in ("CellEdit", "Change", "Column", "Member", "Refusal", "Row", "Sheet")]
