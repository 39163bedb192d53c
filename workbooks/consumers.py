"""The workbook socket: authenticate, parse, make one service call, reply."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from workbooks import broadcast, fanout, protocol, selectors, services, sessions
from workbooks.domain.errors import Forbidden, Invalid, OperationError, RateLimited
from workbooks.domain.flow import ChangeSequencer, TokenBucket
from workbooks.domain.rules import user_color
from workbooks.domain.values import WRITER_ROLES, Ping, PresenceEntry, Select, Sync
from workbooks.limits import current as current_limits

logger = logging.getLogger(__name__)

# What the sender of a message the server failed to handle is told (the failure itself is logged).
SERVER_FAILED = Invalid("the server failed to handle this message, which changed nothing; the failure is logged")

# Events waiting for one socket's consumer; past this the hub drops them and the socket fills the
# gap from the change log when it catches up.
INBOX_LIMIT = 10_000
# How long a change that arrived ahead of another waits for it before the gap is read from the log.
GAP_GRACE = 0.25
# A viewer sends only ping, sync and select, each well under this: a bigger message from one is refused
# before it is parsed.
VIEWER_MAX_MESSAGE_BYTES = 16 * 1024


class WorkbookConsumer(AsyncWebsocketConsumer):
    async def __call__(self, scope, receive, send):
        """As Channels' consumer, except that events come from this process's fan-out hub through an
        inbox, instead of through a channel-layer channel of the socket's own."""
        self.scope = scope
        self.channel_layer = None
        self.conn = uuid.uuid4().hex
        self.inbox: asyncio.Queue = asyncio.Queue(maxsize=INBOX_LIMIT)
        self.base_send = send
        self.backlog = scope.get("send_backlog")  # set by workbooks.routing.SendBacklogMiddleware under daphne
        self.send_now = scope.get("send_now")  # likewise
        self.dispatching = False
        self.next_event: asyncio.Future | None = None
        self.reloading = False  # told to reload: no broadcasts until its next sync
        self.gap_timer: asyncio.TimerHandle | None = None
        self.checked_rev = 0  # the workbook's revision in the database at the hub's last check
        self.left = False
        self.ending = False  # closed by the server: what the client still sends is dropped
        self.joined: int | None = None  # its number in the hub, once it joined
        self.heard = asyncio.get_running_loop().time()  # when the client last sent something
        self.silence_timer: asyncio.TimerHandle | None = None
        try:
            await self.serve(receive)
        except StopConsumer:
            pass
        finally:
            for timer in (self.gap_timer, self.silence_timer):
                if timer is not None:
                    timer.cancel()
            if self.joined is not None:
                fanout.hub().forget(self)

    async def serve(self, receive) -> None:
        """Dispatches the client's messages and the hub's events one at a time. Before a client message,
        every event already in the inbox: those happened before what the client sends now."""
        incoming = asyncio.ensure_future(receive())
        event = self.next_event = asyncio.ensure_future(self.inbox.get())
        loop = asyncio.get_running_loop()
        self.watch_silence()
        try:
            while True:
                await asyncio.wait((incoming, event), return_when=asyncio.FIRST_COMPLETED)
                self.dispatching = True
                if event.done():
                    await self.dispatch(event.result())
                    event = self.next_event = asyncio.ensure_future(self.inbox.get())
                else:
                    while not self.inbox.empty():
                        await self.dispatch(self.inbox.get_nowait())
                    self.heard = loop.time()
                    await self.dispatch(incoming.result())
                    incoming = asyncio.ensure_future(receive())
                self.dispatching = False
        finally:
            for task in (incoming, event):
                task.cancel()
            await asyncio.gather(incoming, event, return_exceptions=True)

    def watch_silence(self) -> None:
        """Looks again when the client will have been silent for TABULA_SOCKET_SILENCE_SECONDS (a live
        page pings every few seconds); if it has, the socket's task closes it. One timer per socket,
        moved on only when it fires: nothing is added to each message's way."""
        limit = settings.TABULA_SOCKET_SILENCE_SECONDS
        if not limit:
            return
        loop = asyncio.get_running_loop()
        left = self.heard + limit - loop.time()
        if left <= 0:
            try:
                self.inbox.put_nowait({"type": "socket.silent"})
                return
            except asyncio.QueueFull:  # look again shortly
                left = 1.0
        self.silence_timer = loop.call_later(left, self.watch_silence)

    async def socket_silent(self, event):
        if asyncio.get_running_loop().time() - self.heard < settings.TABULA_SOCKET_SILENCE_SECONDS:
            self.watch_silence()  # the client spoke after the timer fired
            return
        # Its network is gone: close, and leave presence now rather than when the dead connection's
        # disconnect comes.
        logger.info("workbook %s socket %s went silent; closing", getattr(self, "workbook_id", "?"), self.conn)
        await self.end(broadcast.CLOSE_SILENT)

    async def end(self, code: int) -> None:
        """Closes the socket from this side, and leaves presence now rather than at the disconnect;
        anything its client sends after this is dropped."""
        self.ending = True
        await self.close(code=code)
        await self.leave_workbook()

    async def connect(self):
        user = self.scope["user"]
        self.workbook_id = self.scope["url_route"]["kwargs"]["workbook_id"]
        self.role = await selectors.arole_of(user=user, workbook_id=self.workbook_id)
        if self.role is None:
            await self.close()  # before accept: the handshake is refused
            return
        self.user_id = user.pk
        # The session that authenticated the handshake: the socket lives as long as it logs the user
        # in (workbooks/sessions.py). Only its digest is ever sent anywhere.
        session = self.scope.get("session")
        self.session_key = getattr(session, "session_key", None) if session is not None else None
        self.session_digest = sessions.digest(self.session_key)
        self.limits = current_limits()
        self.bucket = TokenBucket(rate=self.limits.ops_per_second, burst=self.limits.ops_burst, clock=time.monotonic)
        self.me = PresenceEntry(user.pk, user.get_username(), user_color(user.pk))
        self.presence_sent = protocol.encode(protocol.presence([self.me]))  # what hello tells it
        try:
            first = await broadcast.join(self)
        except fanout.TooManySockets as exc:
            logger.warning("workbook %s: refusing a socket: %s (TABULA_MAX_SOCKETS_PER_USER)", self.workbook_id, exc)
            await self.close()
            return
        # Joined first, then read the revision: no change can fall between the two.
        rev = await selectors.aworkbook_rev(workbook_id=self.workbook_id)
        if rev is None:
            await broadcast.leave(self)
            await self.close()
            return
        self.sequencer = ChangeSequencer(rev)
        await self.accept()
        await self.send_message(protocol.hello(rev=rev, me=self.me, role=self.role, others=()))
        await broadcast.announce(self, self.me, query=first)

    async def disconnect(self, code):
        await self.leave_workbook()

    async def leave_workbook(self) -> None:
        """Leaves the workbook's group and presence, once."""
        if getattr(self, "sequencer", None) is None or self.left:
            return
        self.left = True
        try:
            await broadcast.leave(self)
            await broadcast.depart(self)
        except fanout.UNAVAILABLE:
            logger.warning("could not leave workbook %s's group: the channel layer is unavailable", self.workbook_id)

    async def send_message(self, message: dict) -> None:
        await self.send(text_data=protocol.encode(message))

    async def send(self, text_data=None, bytes_data=None, close=False):
        if self.backlog is not None and text_data is not None:
            self.backlog.sending(len(text_data))
        await super().send(text_data=text_data, bytes_data=bytes_data, close=close)

    async def behind(self) -> bool:
        """True while the client is too far behind to be sent broadcasts. The moment it falls that far
        behind it is told to ``reload``; its ``sync`` after the new snapshot brings it up to date."""
        if self.reloading:
            return True
        if self.backlog is None or not self.backlog.overrun:
            return False
        logger.warning("workbook %s socket %s has %s bytes unread; telling it to reload", self.workbook_id, self.conn, self.backlog.queued)
        self.reloading = True
        await self.send_message(protocol.reload())
        return True

    async def dispatch(self, message):
        """Every event and client message, with the database or channel layer failing handled once.

        Unlike Channels' own, no ``close_old_connections`` hop first: that runs in the one thread
        every database call of the process shares, so each message would wait for whatever commit
        is in there. Every database call here goes through ``database_sync_to_async``, which closes
        old connections in that thread itself.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"no handler for message type {message['type']}")
        try:
            await handler(message)
        except fanout.UNAVAILABLE as exc:
            logger.warning("workbook %s socket closed: %s: %s", getattr(self, "workbook_id", "?"), type(exc).__name__, exc)
            await self.close(code=broadcast.CLOSE_UNAVAILABLE)

    async def receive(self, text_data=None, bytes_data=None):
        """One client message. What costs nothing comes before it is parsed: its size, the rate limit,
        and for a viewer a size none of their messages needs. The server failing to handle it is this
        message's error, logged and told to its sender alone, and the socket stays open; only the
        database or the channel layer being unavailable closes it (``dispatch``)."""
        if self.ending:
            return
        if text_data is None:
            await self.send_message(protocol.error(Invalid("messages are JSON text, not binary")))
            return
        # The limits are in bytes, as on the wire (isascii is free: CPython knows it of every str).
        size = len(text_data) if text_data.isascii() else len(text_data.encode())
        if size > self.limits.max_message_bytes:
            await self.close(code=broadcast.CLOSE_MESSAGE_TOO_BIG)
            return
        refusal = self.refusal(size)
        if refusal is not None:
            await self.send_message(protocol.error(refusal, protocol.op_id_in_head(text_data)))
            return
        content = None
        try:
            content = protocol.decode(text_data, self.limits)
            message = protocol.parse_client_message(content, self.limits)
            if isinstance(message, Ping):
                await self.send_message(protocol.pong())
            elif isinstance(message, Sync):
                await self.sync(message.since)
            elif isinstance(message, Select):
                self.me = PresenceEntry(self.me.user_id, self.me.name, self.me.color, message.ranges, message.sheet)
                await broadcast.announce(self, self.me)
            else:
                await self.apply(message)
        except OperationError as exc:
            await self.send_message(protocol.error(exc, protocol.op_id_of(content)))
        except fanout.UNAVAILABLE:
            raise
        except Exception:
            logger.exception("workbook %s socket %s: handling a client message failed", self.workbook_id, self.conn)
            await self.send_message(protocol.error(SERVER_FAILED, protocol.op_id_of(content)))

    def refusal(self, size: int) -> OperationError | None:
        """Why a message of ``size`` bytes is refused before it is parsed, if it is."""
        if not self.bucket.take():
            return RateLimited(f"more than {self.limits.ops_per_second} messages a second; slow down and resend")
        if size > VIEWER_MAX_MESSAGE_BYTES and self.role not in WRITER_ROLES:
            return Forbidden("viewers cannot change the workbook")
        return None

    async def apply(self, operation) -> None:
        """Queues the operation and goes on reading: the socket's next operation can be queued while
        this one commits (they commit in order)."""
        if self.role not in WRITER_ROLES:
            raise Forbidden("viewers cannot change the workbook")
        pending = services.submit_operation(workbook_id=self.workbook_id, user=self.scope["user"], operation=operation)
        pending.add_done_callback(functools.partial(self.settled, operation.op))

    def settled(self, op_id: str, pending: asyncio.Future) -> None:
        """An operation's outcome. Its broadcast answers the client when there is one; anything else
        goes through the inbox, to be answered in turn with the socket's other events."""
        if pending.cancelled():
            return
        error = pending.exception()
        if error is None and pending.result().broadcast and not pending.result().duplicate:
            return
        event = {"type": "operation.settled", "op": op_id, "error": error, "applied": None if error else pending.result()}
        try:
            self.inbox.put_nowait(event)
        except asyncio.QueueFull:  # hopelessly behind: the client reconnects, resends and syncs
            logger.warning("workbook %s socket %s: inbox full, cannot answer op %s; closing", self.workbook_id, self.conn, op_id)
            asyncio.ensure_future(self.close(code=broadcast.CLOSE_UNAVAILABLE))

    async def operation_settled(self, event):
        error = event["error"]
        if isinstance(error, OperationError):
            await self.send_message(protocol.error(error, event["op"]))
        elif isinstance(error, fanout.UNAVAILABLE):
            raise error  # dispatch closes the socket
        elif error is not None:  # it alone failed (the commit queue retries a failed batch one by one)
            logger.error("workbook %s socket %s: op %s failed", self.workbook_id, self.conn, event["op"], exc_info=error)
            await self.send_message(protocol.error(SERVER_FAILED, event["op"]))
        else:
            applied = event["applied"]
            # A retried op is answered again; a change whose broadcast failed may have reached this
            # socket all the same (this process hands its changes out before sending them on).
            if applied.duplicate or applied.change.rev > self.sequencer.rev:
                await self.answer_directly(applied.change)
            if not applied.broadcast:
                # If Redis restarted it forgot every group: re-join now rather than at the next check.
                fanout.hub().check_soon()

    async def answer_directly(self, change) -> None:
        """Answers the sender with its change when no broadcast will (a retried op, or a failed broadcast):
        as is when this socket already had it, else in its place in revision order."""
        text = protocol.encode(protocol.change(change))
        if change.rev <= self.sequencer.rev:
            await self.send(text_data=text)
        else:
            await self.deliver(change.rev, text)

    async def sync(self, since: int) -> None:
        """Sends every change after ``since`` then ``synced``, or ``reload`` when they are not kept."""
        if not await self.role_unchanged():
            return
        try:
            found = await selectors.achanges_since(workbook_id=self.workbook_id, since=since, limit=self.limits.max_sync_changes)
        except selectors.HistoryTruncated:
            await self.send_message(protocol.reload())
            rev = await selectors.aworkbook_rev(workbook_id=self.workbook_id)
            self.sequencer.skip_to(rev or 0)
            return
        for change in found.changes:
            await self.send_message(protocol.change(change))
        self.sequencer.skip_to(found.rev)
        await self.send_message(protocol.synced(found.rev))
        if self.reloading:
            self.reloading = False
            # Presence was not sent while it was behind either: announcing itself makes the hub send
            # the workbook's presence again, and this client gets it whatever it last had.
            self.presence_sent = None
            await broadcast.announce(self, self.me)

    # ------------------------------------------------ events from the fan-out hub

    def deliver_now(self, event: dict) -> bool:
        """Sends a broadcast at once, from the hub, when nothing can be in its way: the socket's task is
        waiting (not handling anything, nothing in its inbox), the changes follow the last one sent,
        and the client keeps up. Saves a turn of the socket's task per socket and message. False: the
        event goes through the inbox."""
        if self.send_now is None or self.dispatching or self.reloading or not self.inbox.empty():
            return False
        if self.next_event is None or self.next_event.done() or (self.backlog is not None and self.backlog.overrun):
            return False
        if event["type"] == "presence.text":
            if event["text"] != self.presence_sent:
                self.presence_sent = event["text"]
                self.send_texts_now([event["text"]])
            return True
        changes = event.get("changes") if event["type"] == "workbook.changes" else None
        if not changes or self.sequencer.has_gap or changes[0][0] != self.sequencer.rev + 1:
            return False
        self.send_texts_now([ready for rev, text in changes for ready in self.sequencer.offer(rev, text)])
        return True

    def send_texts_now(self, texts: list[str]) -> None:
        if self.backlog is not None:
            self.backlog.sending(sum(map(len, texts)))
        self.send_now(texts)

    async def workbook_changes(self, event):
        for rev, text in event["changes"]:
            await self.deliver(rev, text)

    async def deliver(self, rev: int, text: str) -> None:
        """Sends a change in revision order. One that arrives ahead of another waits for it: the
        broadcasts of two processes can cross on the way. Past ``GAP_GRACE`` the gap is filled from the
        change log."""
        if await self.behind():
            return
        for ready in self.sequencer.offer(rev, text):
            await self.send(text_data=ready)
        if self.sequencer.has_gap:
            self.expect_gap_filled()

    def expect_gap_filled(self) -> None:
        if self.gap_timer is None:
            self.gap_timer = asyncio.get_running_loop().call_later(GAP_GRACE, self.gap_overdue)

    def gap_overdue(self) -> None:
        self.gap_timer = None
        with contextlib.suppress(asyncio.QueueFull):  # the hub's next check finds the gap then
            self.inbox.put_nowait({"type": "workbook.gap"})

    async def workbook_gap(self, event):
        if (self.sequencer.has_gap or self.sequencer.rev < self.checked_rev) and not await self.behind():
            await self.fill_gap()

    async def fill_gap(self) -> None:
        """A change arrived ahead of one not yet sent: every revision below it is committed, so read them."""
        if not await self.role_unchanged():
            return
        try:
            found = await selectors.achanges_since(workbook_id=self.workbook_id, since=self.sequencer.rev, limit=self.limits.max_sync_changes)
        except selectors.HistoryTruncated:
            await self.send_message(protocol.reload())
            self.sequencer.skip_to(max([*self.sequencer.held, await selectors.aworkbook_rev(workbook_id=self.workbook_id) or 0]))
            return
        for change in found.changes:
            for text in self.sequencer.offer(change.rev, protocol.encode(protocol.change(change))):
                await self.send(text_data=text)

    async def role_unchanged(self) -> bool:
        """Reads the user's role again before the change log is read: a socket that missed being told
        its role changed or went away (or the workbook did) closes instead, as it would have then."""
        role = await selectors.arole_of(user=self.scope["user"], workbook_id=self.workbook_id)
        if role == self.role:
            return True
        if role is not None:
            await self.end(broadcast.CLOSE_ROLE_CHANGED)
        elif await selectors.aworkbook_rev(workbook_id=self.workbook_id) is None:
            await self.end(broadcast.CLOSE_WORKBOOK_DELETED)
        else:
            await self.end(broadcast.CLOSE_ACCESS_REMOVED)
        return False

    async def workbook_check(self, event):
        """The hub's periodic look at the database: close if the workbook or this user's role went away or
        changed meanwhile (its event lost, or sent before this socket joined), catch up if a broadcast
        went missing. Roles read before this socket joined say nothing about it."""
        role = event["roles"].get(self.user_id) if self.joined <= event["as_of"] else self.role
        if event["rev"] is None:
            await self.end(broadcast.CLOSE_WORKBOOK_DELETED)
        elif role != self.role:
            await self.end(broadcast.CLOSE_ACCESS_REMOVED if role is None else broadcast.CLOSE_ROLE_CHANGED)
        elif event["rev"] > self.sequencer.rev:
            self.checked_rev = max(self.checked_rev, event["rev"])  # broadcasts may still be on the way
            self.expect_gap_filled()

    async def workbook_closed(self, event):
        if event.get("user_id") in (None, self.user_id):
            await self.end(event["code"])

    async def login_changed(self, event):
        """A login of this socket's user may have ended (workbooks/sessions.py): closes with 4401 if it was
        the one that authenticated this socket. A logout names its session; anything else (a new
        password, the user deactivated or deleted) has each socket check its own."""
        if self.session_digest is None or event["ended"] != self.session_digest:
            if await sessions.alogin_holds(session_key=self.session_key, user_id=self.user_id):
                return
        logger.info("workbook %s socket %s: the login it was opened with ended; closing", self.workbook_id, self.conn)
        await self.end(broadcast.CLOSE_LOGIN_ENDED)

    async def presence_text(self, event):
        """Who is on the workbook, from the hub; sent when it differs from what this client has."""
        if event["text"] != self.presence_sent and not await self.behind():
            self.presence_sent = event["text"]
            await self.send(text_data=event["text"])
