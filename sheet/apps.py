from django.apps import AppConfig


class SheetConfig(AppConfig):
    name = "sheet"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from sheet import sessions

        sessions.connect_signals()  # a login that ends closes its sockets (sheet/sessions.py)
