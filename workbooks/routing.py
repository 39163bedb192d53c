"""The socket routes, and the outermost socket middleware."""

import functools
import logging

from django.conf import settings
from django.urls import path
from twisted.internet import tcp

from workbooks.consumers import WorkbookConsumer
from workbooks.domain.flow import SendBacklog
from workbooks.legacy import UpgradedConsumer

logger = logging.getLogger(__name__)

websocket_urlpatterns = [
    path("ws/workbooks/<int:workbook_id>/", WorkbookConsumer.as_asgi()),
    path("ws/sheets/<int:workbook_id>/", UpgradedConsumer.as_asgi()),  # a v1 page, open across the upgrade
]


class SendBacklogMiddleware:
    """Puts a ``SendBacklog`` in each socket's scope (``send_backlog``), registered with the server's
    transport, so the consumer knows when its client stops reading.

    Outermost, because it needs the server's own ``send``: daphne's is
    ``functools.partial(server.handle_reply, protocol)``. daphne upgraded the socket from an HTTP
    connection whose Twisted ``HTTPChannel`` stays the transport's producer; the channel passes the
    transport's pause and resume on to one producer registered with it, and that is the backlog.
    Under another server the scope has no backlog and nothing is watched. With the backlog comes
    ``send_now``, a way to send text frames without a coroutine.
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


def send_now(server, protocol, texts: list[str]) -> None:
    """daphne's ``handle_reply`` for text frames, called without a coroutine (the fan-out hub's fast
    path, WorkbookConsumer.deliver_now): nothing once the connection is gone.

    A broadcast goes to every socket on a workbook, so its frame is built once (``text_frame``) and
    written to each connection's transport as is, the frames of one batch of changes together, and
    straight to the socket when nothing is waiting in the transport's buffer: that is what the
    fan-out spends its time on. Anything unusual for the connection (compression, a message being
    sent in fragments) takes autobahn's own path.
    """
    connection = server.connections.get(protocol)
    if connection is None or connection.get("disconnected") or not texts:
        return
    if protocol.state != protocol.STATE_OPEN or protocol._perMessageCompress is not None or protocol.send_state != protocol.SEND_STATE_GROUND:
        for text in texts:
            protocol.handle_reply({"type": "websocket.send", "text": text})
        return
    write(protocol.transport, b"".join(map(text_frame, texts)))


def text_frame(text: str) -> bytes:
    """One unfragmented, unmasked WebSocket text frame (RFC 6455 5.2), as a server sends it. The
    frames of the last 512 texts of up to 16,384 characters are kept, so one broadcast is framed once
    for all its sockets while at most a few MiB stay in memory; a longer text (a big paste) is
    framed per socket, which its size dwarfs."""
    return _small_frame(text) if len(text) <= 16_384 else _frame(text)


@functools.lru_cache(maxsize=512)
def _small_frame(text: str) -> bytes:
    return _frame(text)


def _frame(text: str) -> bytes:
    payload = text.encode()
    size = len(payload)
    if size < 126:
        header = bytes((0x81, size))
    elif size < 1 << 16:
        header = bytes((0x81, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + size.to_bytes(8, "big")
    return header + payload


def write(transport, data: bytes) -> None:
    """``transport.write``, except that when the transport has nothing buffered the bytes go to the
    socket now, instead of after the transport has registered with the event loop to learn it may
    write (two epoll calls and a turn of the loop per socket and message). What the socket does not
    take is buffered by the transport as usual, which is also what pauses its producer."""
    if (  # Twisted keeps what waits to be written in dataBuffer and _tempDataBuffer
        isinstance(transport, tcp.Connection)
        and not transport.dataBuffer
        and not transport._tempDataBuffer
        and transport.connected
        and not transport.disconnecting
    ):
        sent = transport.writeSomeData(data)
        if isinstance(sent, int):  # else an error: the transport's own write reports it
            if sent == len(data):
                return
            data = data[sent:]
    transport.write(data)
