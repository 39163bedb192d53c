"""One fan-out hub per server process: the process, not each socket, is a member of a workbook's group.

A change reaches a daphne process once, through one channel of the channel layer, already encoded;
the hub hands it to each of the process's sockets on that workbook through the socket's own inbox, which
its consumer reads in turn with the socket's other events. So the channel layer carries one message
per process instead of one per socket, and nothing is encoded per recipient. The process that
committed a change hands it to its own sockets at once and skips it when it comes back through the
channel layer.

Presence lives in the hub too: one table per workbook of every socket on it (this process's and the
others'), updated once per process for each join, selection and leave, and sent to the local sockets
at most every ``PRESENCE_DELAY``, encoded once. Only a process's first socket on a workbook asks the
other processes who is there (each answers once, with its own sockets), so a join costs one message
per process, not one per socket on the workbook.

The process is also the member of a group per user with sockets on it (``user_group_name``): a
login that ends (logout, password change, deactivation) is told to the user's sockets there, on every
process, and each checks its own session (workbooks/sessions.py). The hub counts each user's sockets, and
refuses one past ``TABULA_MAX_SOCKETS_PER_USER`` on this process (``TooManySockets``).

The hub also keeps the sockets honest when the channel layer misbehaves (Redis pub/sub loses what
is in flight when Redis restarts, and says nothing): every ``CHECK_SECONDS``, and at once when a
broadcast failed or a read from the layer failed and works again, it re-joins its groups and tells
each socket the workbook's revision and its user's role in the database, so a socket that missed a
broadcast fills the gap from the change log, and one that missed its role's change or removal closes.
"""

from __future__ import annotations

import asyncio
import logging
import weakref

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import InterfaceError, OperationalError
from redis.exceptions import RedisError

from workbooks import protocol
from workbooks.domain.values import PresenceEntry
from workbooks.models import Member, Workbook

logger = logging.getLogger(__name__)

CHECK_SECONDS = 5.0
RETRY_SECONDS = 0.5
PRESENCE_DELAY = 0.05  # presence changes within this long reach the sockets as one message
PRESENCE_EVENTS = ("presence.update", "presence.leave", "presence.roster")
USER_EVENTS = ("login.changed",)  # for every socket of the message's ``user``, whatever its workbook
# The database or the channel layer is not there (down, restarting, a connection lost): a socket
# closes with 4503 and its client comes back later. A database refusing what was asked of it
# (DataError, IntegrityError, ProgrammingError) is not this: that is one message's error.
UNAVAILABLE = (OperationalError, InterfaceError, RedisError, OSError)


class TooManySockets(Exception):
    """The user has ``TABULA_MAX_SOCKETS_PER_USER`` sockets on this server process already."""


def group_name(workbook_id: int) -> str:
    return f"workbook.{workbook_id}"


def user_group_name(user_id: int) -> str:
    return f"user.{user_id}"


def presence_fields(conn: str, entry: PresenceEntry) -> dict:
    """One socket's presence as the channel layer carries it."""
    return {
        "conn": conn,
        "user_id": entry.user_id,
        "name": entry.name,
        "color": entry.color,
        "sheet": entry.sheet,
        "selection": [list(r) for r in entry.selection],
    }


def presence_entry(fields: dict) -> PresenceEntry:
    return PresenceEntry(fields["user_id"], fields["name"], fields["color"], tuple(map(tuple, fields["selection"])), fields.get("sheet"))


@database_sync_to_async
def workbook_states(users_by_workbook: dict[int, set[int]]) -> tuple[dict[int, int], dict[tuple[int, int], str]]:
    """Each workbook's revision, and the role of each of these users on it (workbook id, user id)."""
    revs = dict(Workbook.objects.filter(pk__in=list(users_by_workbook)).values_list("pk", "rev"))
    users = set().union(*users_by_workbook.values())
    members = Member.objects.filter(workbook_id__in=list(users_by_workbook), user_id__in=list(users))
    return revs, {(workbook_id, user_id): role for workbook_id, user_id, role in members.values_list("workbook_id", "user_id", "role")}


class Hub:
    def __init__(self, layer):
        self.layer = layer
        self.loop = asyncio.get_running_loop()
        self.channel: str | None = None
        self.starting = asyncio.Lock()
        self.sockets: dict[int, dict[str, object]] = {}  # workbook id -> conn id -> consumer
        self.users: dict[int, dict[str, object]] = {}  # user id -> conn id -> consumer
        self.joins = 0  # sockets joined so far: a socket's number tells whether a check's reads saw it
        self.tasks: list[asyncio.Task] = []
        self.pending_check: asyncio.Task | None = None
        self.stopped = False
        self.presence: dict[int, dict[str, PresenceEntry]] = {}  # workbook id -> conn id -> where it is
        self.presence_due: set[int] = set()
        self.background: set[asyncio.Task] = set()

    async def start(self) -> None:
        """Makes the hub's channel once. Sockets connecting together wait for the first one's: a second
        channel would be the one read while the groups hold the first (pub/sub's ``new_channel``
        talks to Redis, so two sockets can be in there at once)."""
        async with self.starting:
            if self.channel is None:
                self.channel = await self.layer.new_channel()
                self.tasks = [asyncio.create_task(self.read()), asyncio.create_task(self.check_periodically())]

    async def join(self, consumer) -> bool:
        """Adds the socket (its ``workbook_id``, ``user_id`` and ``conn``) and numbers it (``joined``); True
        when it is the process's first on its workbook (it should ask who is there). Raises TooManySockets
        when its user has ``TABULA_MAX_SOCKETS_PER_USER`` on this process already: counted here, between
        two awaits, so sockets connecting together cannot pass the limit, and gone with the process."""
        await self.start()
        mine = self.users.setdefault(consumer.user_id, {})
        limit = settings.TABULA_MAX_SOCKETS_PER_USER
        if limit and len(mine) >= limit:
            raise TooManySockets(f"user {consumer.user_id} has {len(mine)} sockets on this process")
        self.joins += 1
        consumer.joined = self.joins
        first_of_user = not mine
        mine[consumer.conn] = consumer
        local = self.sockets.setdefault(consumer.workbook_id, {})
        first = not local
        local[consumer.conn] = consumer
        try:
            if first:
                await self.layer.group_add(group_name(consumer.workbook_id), self.channel)
            if first_of_user:
                await self.layer.group_add(user_group_name(consumer.user_id), self.channel)
        except BaseException:
            self.forget(consumer)
            raise
        return first

    async def leave(self, consumer) -> None:
        for group in self.forget(consumer):
            await self.layer.group_discard(group, self.channel)

    def forget(self, consumer) -> list[str]:
        """Drops the socket; returns the groups this process no longer needs (it was the last socket on
        its workbook, or of its user)."""
        local = self.sockets.get(consumer.workbook_id)
        if local is None or local.pop(consumer.conn, None) is None:
            return []
        unused = []
        if not local:
            del self.sockets[consumer.workbook_id]
            self.presence.pop(consumer.workbook_id, None)
            unused.append(group_name(consumer.workbook_id))
        mine = self.users.get(consumer.user_id, {})
        mine.pop(consumer.conn, None)
        if not mine:
            self.users.pop(consumer.user_id, None)
            unused.append(user_group_name(consumer.user_id))
        return unused

    def hand_out(self, message: dict) -> None:
        """Puts a message in the inbox of each local socket it is for (one socket, with ``to``)."""
        if message.get("type") in PRESENCE_EVENTS:
            self.on_presence(message)
            return
        if message.get("origin") == self.channel and self.channel is not None:
            return  # handed out when it was sent (broadcast.changes)
        if message.get("type") in USER_EVENTS:
            targets = self.users.get(message["user"], {}).values()
        else:
            local = self.sockets.get(message.get("workbook"), {})
            targets = [local[message["to"]]] if message.get("to") in local else [] if "to" in message else local.values()
        for consumer in list(targets):
            if consumer.deliver_now(message):
                continue
            try:
                consumer.inbox.put_nowait(message)
            except asyncio.QueueFull:
                # The socket's consumer is far behind (stuck on the database, say). Dropping is safe:
                # the next change it gets shows the gap, which it fills from the change log.
                logger.warning(
                    "workbook %s socket %s is %s messages behind; dropping one", consumer.workbook_id, consumer.conn, consumer.inbox.qsize()
                )

    def on_presence(self, message: dict) -> None:
        workbook_id = message["workbook"]
        if workbook_id not in self.sockets:
            return
        table = self.presence.setdefault(workbook_id, {})
        if message["type"] == "presence.leave":
            table.pop(message["conn"], None)
        else:
            for fields in message["entries"] if message["type"] == "presence.roster" else [message]:
                table.pop(fields["conn"], None)  # the latest update last: it wins for a user with several tabs
                table[fields["conn"]] = presence_entry(fields)
            if message.get("reply_to") not in (None, self.channel):
                local = self.sockets[workbook_id].values()
                roster = {"type": "presence.roster", "workbook": workbook_id, "entries": [presence_fields(c.conn, c.me) for c in local]}
                self.spawn(self.layer.send(message["reply_to"], roster))
        if workbook_id not in self.presence_due:
            self.presence_due.add(workbook_id)
            self.loop.call_later(PRESENCE_DELAY, self.send_presence, workbook_id)

    def send_presence(self, workbook_id: int) -> None:
        self.presence_due.discard(workbook_id)
        table = self.presence.get(workbook_id)
        if table:
            self.hand_out({"type": "presence.text", "workbook": workbook_id, "text": protocol.encode(protocol.presence(table.values()))})

    def spawn(self, awaitable) -> None:
        async def quietly():
            try:
                await awaitable
            except UNAVAILABLE:
                logger.warning("fan-out hub could not answer a presence query", exc_info=True)

        task = asyncio.create_task(quietly())
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def read(self) -> None:
        failing = False
        while not self.stopped:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                if self.stopped:
                    return  # its connection was closed under it
                if not failing:
                    logger.warning("fan-out hub cannot read the channel layer; retrying", exc_info=True)
                failing = True
                await asyncio.sleep(RETRY_SECONDS)
                continue
            if failing:
                failing = False
                logger.warning("fan-out hub reads the channel layer again; re-joining groups and checking revisions")
                self.check_soon()
            self.hand_out(message)

    def check_soon(self) -> None:
        if self.pending_check is None or self.pending_check.done():
            self.pending_check = asyncio.create_task(self.check())

    async def check_periodically(self) -> None:
        while True:
            await asyncio.sleep(CHECK_SECONDS)
            await self.check()

    async def check(self) -> None:
        """Re-joins every group this process needs and gives each socket the workbook's revision and the
        roles on it, as the database has them (``as_of``: read after the sockets numbered up to it
        joined; a socket that joined later may have been given its role after the read)."""
        users_by_workbook = {workbook_id: {c.user_id for c in local.values()} for workbook_id, local in self.sockets.items()}
        if not users_by_workbook:
            return
        as_of = self.joins
        try:
            for group in [*map(group_name, users_by_workbook), *map(user_group_name, list(self.users))]:
                await self.layer.group_add(group, self.channel)
            revs, roles = await workbook_states(users_by_workbook)
        except UNAVAILABLE:
            logger.warning("fan-out hub check failed; trying again in %ss", CHECK_SECONDS, exc_info=True)
            return
        for workbook_id, users in users_by_workbook.items():
            workbook_roles = {user_id: roles.get((workbook_id, user_id)) for user_id in users}
            self.hand_out({"type": "workbook.check", "workbook": workbook_id, "rev": revs.get(workbook_id), "roles": workbook_roles, "as_of": as_of})

    def stop(self) -> None:
        self.stopped = True
        for task in self.tasks:
            task.cancel()

    async def wait_stopped(self, *, patience: float = 0.5) -> None:
        """After ``stop``: waits for the hub's tasks to end (before its event loop closes, in tests). A
        channels_redis receive can swallow its cancellation and start a new read; cancelling it again
        ends it."""
        pending = {task for task in self.tasks if not task.done()}
        while pending:
            _, pending = await asyncio.wait(pending, timeout=patience)
            for task in pending:
                task.cancel()


_hubs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def current_hub() -> Hub | None:
    """This process's hub for the default channel layer, if one was made."""
    return _hubs.get(get_channel_layer())


def hub() -> Hub:
    """This process's hub for the default channel layer, made on first use in the running event loop."""
    layer = get_channel_layer()
    current = _hubs.get(layer)
    if current is None or current.loop is not asyncio.get_running_loop() or current.loop.is_closed():
        if current is not None:
            current.stop()
        current = _hubs[layer] = Hub(layer)
    return current
