from django.db import migrations, models


class Migration(migrations.Migration):
    """The log records what each change replaced (see Change); entries logged before say nothing."""

    dependencies = [("sheet", "0005_column_slot_unique")]

    operations = [migrations.AddField(model_name="change", name="replaced", field=models.JSONField(default=dict))]
