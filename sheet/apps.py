from django.apps import AppConfig


class SheetConfig(AppConfig):
    """Tabula v1's app, where a sheet was what v2 calls a workbook. It is kept for its migrations
    only: the last one hands every v1 sheet to ``workbooks`` (as a workbook with the same id and
    one sheet, ``Sheet1``) and drops v1's tables."""

    name = "sheet"
    default_auto_field = "django.db.models.BigAutoField"
