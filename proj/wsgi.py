"""WSGI entry point (gunicorn serves HTTP in production)."""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
application = get_wsgi_application()

gc.freeze()  # as in proj/asgi.py: what is loaded now stays, and collections skip it
