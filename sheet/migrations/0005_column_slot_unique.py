from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("sheet", "0004_slots_gapped_positions_tombstones")]

    operations = [
        migrations.AddConstraint(
            model_name="column", constraint=models.UniqueConstraint(fields=("sheet", "slot"), name="column_slot_unique_in_sheet")
        ),
    ]
