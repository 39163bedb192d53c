"""ASGI entry point: HTTP and WebSocket (daphne). The socket stack watches the send backlog, checks
Origin, then the session."""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from proj.routing import websocket_urlpatterns  # noqa: E402
from sheet.routing import SendBacklogMiddleware  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": SendBacklogMiddleware(AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))),
    }
)

# Everything loaded so far lives as long as the process: keep it out of the cyclic garbage
# collector's reach, so a collection (which a large message's thousands of new objects trigger)
# does not walk Django, Twisted and Channels each time.
gc.freeze()
