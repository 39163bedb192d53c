"""The history that can be rebuilt starts here: changes logged before kept no record of what they
replaced, and rows and columns deleted before are gone for good, so no earlier revision can be shown
again or restored. Each sheet's floor (see prune_changes) rises to its revision; its log stays."""

from django.db import migrations
from django.db.models import F


def raise_floor(apps, schema_editor):
    apps.get_model("sheet", "Sheet").objects.update(history_floor=F("rev"))


class Migration(migrations.Migration):
    dependencies = [("sheet", "0008_cell_edits")]

    operations = [migrations.RunPython(raise_floor, migrations.RunPython.noop)]
