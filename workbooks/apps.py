from django.apps import AppConfig


class WorkbooksConfig(AppConfig):
    name = "workbooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from workbooks import sessions

        sessions.connect_signals()  # a login that ends closes its sockets (workbooks/sessions.py)
