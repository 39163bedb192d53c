"""The socket routes, and the outermost socket middleware."""

import functools
import logging

from django.conf import settings
from django.urls import path

from sheet.consumers import SheetConsumer
from sheet.domain.flow import SendBacklog

logger = logging.getLogger(__name__)

websocket_urlpatterns = [
    path("ws/sheets/<int:sheet_id>/", SheetConsumer.as_asgi()),
]


class SendBacklogMiddleware:
    """Puts a ``SendBacklog`` in each socket's scope (``send_backlog``), registered with the server's
    transport, so the consumer knows when its client stops reading.

    Outermost, because it needs the server's own ``send``: daphne's is
    ``functools.partial(server.handle_reply, protocol)``. daphne upgraded the socket from an HTTP
    connection whose Twisted ``HTTPChannel`` stays the transport's producer; the channel passes the
    transport's pause and resume on to one producer registered with it, and that is the backlog.
    Under another server the scope has no backlog and nothing is watched. With the backlog comes
    ``send_now``, a way to send a text frame without a coroutine.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        protocol = getattr(send, "args", (None,))[0]
        channel = getattr(getattr(protocol, "transport", None), "producer", None)
        register = getattr(channel, "registerProducer", None)
        if register is not None:
            backlog = SendBacklog(settings.TABULA_SEND_BACKLOG_BYTES)
            try:
                register(backlog, True)
            except RuntimeError:  # the channel has a producer already
                logger.warning("cannot watch a socket's send backlog: its HTTP channel has a producer already")
            else:
                scope = {**scope, "send_backlog": backlog, "send_now": functools.partial(send_now, send.func.__self__, protocol)}
        return await self.app(scope, receive, send)


def send_now(server, protocol, text: str) -> None:
    """daphne's ``handle_reply`` for one text frame, called without a coroutine (the fan-out hub's
    fast path, SheetConsumer.deliver_now): nothing once the connection is gone."""
    connection = server.connections.get(protocol)
    if connection is not None and not connection.get("disconnected"):
        protocol.handle_reply({"type": "websocket.send", "text": text})
