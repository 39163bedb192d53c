"""ASGI entry point: HTTP and WebSocket (daphne). The socket stack watches the send backlog, checks
Origin, then the session."""

import gc
import os
import sys

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from proj.routing import websocket_urlpatterns  # noqa: E402
from workbooks.routing import SendBacklogMiddleware  # noqa: E402

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

# The database thread and the event loop share the GIL. Each time a commit's answer comes back from
# PostgreSQL the database thread waits for the loop thread to let go, up to the switch interval (5 ms
# by default), and a commit waits for several answers. At 400 edits a second on one workbook the fan-out
# benchmark's p99 was 49 ms with the default and 28 ms with 1 ms (20-s runs, one after the other).
sys.setswitchinterval(0.001)
