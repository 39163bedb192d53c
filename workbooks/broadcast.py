"""Group names and everything sent through the channel layer.

Consumers and HTTP views both use this module, so a change committed in a gunicorn worker reaches
the sockets held by any daphne process through the (Redis) channel layer. Each daphne process is one
member of a workbook's group and hands messages to its own sockets (workbooks/fanout.py); a message naming
``to`` is for that one socket only. A message to a user's group (``login_changed``) reaches that
user's sockets on every workbook.
"""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from workbooks import fanout, protocol
from workbooks.domain.values import Change, PresenceEntry

logger = logging.getLogger(__name__)

# Close codes the server uses; docs/protocol.md lists them for clients.
CLOSE_LOGIN_ENDED = 4401  # logged out, password changed, user deactivated or deleted: log in again
CLOSE_WORKBOOK_DELETED = 4404
CLOSE_ACCESS_REMOVED = 4403
CLOSE_ROLE_CHANGED = 4409
# Not the standard 1009: daphne (autobahn) lets an application close only with 1000 or 3000-4999 and
# fails on anything else, so a 1009 would reach the client as 1011, which says "reconnect and resend".
CLOSE_MESSAGE_TOO_BIG = 4413
# The database or the channel layer failed: the client reconnects, resends what was not
# acknowledged and syncs, once the service is back (not 1011, for the same reason as above).
CLOSE_UNAVAILABLE = 4503
# The client sent nothing for TABULA_SOCKET_SILENCE_SECONDS: its network is gone (a live page pings).
CLOSE_SILENT = 4408

group_name = fanout.group_name


async def join(consumer) -> bool:
    """Joins the workbook's group; True for this process's first socket on the workbook."""
    return await fanout.hub().join(consumer)


async def leave(consumer) -> None:
    await fanout.hub().leave(consumer)


async def changes(workbook_id: int, changes: list[Change]) -> bool:
    """Sends committed changes, in revision order, to every socket on the workbook, in one message and
    each encoded once for all of them.

    Returns False when the channel layer failed (say Redis is restarting). The changes are committed
    all the same: sockets fill the gap from the change log when the next change or the hub's next
    check reaches them, and clients that reconnect catch up with ``sync``.
    """
    event = {"type": "workbook.changes", "workbook": workbook_id, "changes": [[c.rev, protocol.encode(protocol.change(c))] for c in changes]}
    hub = fanout.current_hub()
    if hub is not None and hub.channel is not None and hub.loop is asyncio.get_running_loop():
        # This process's sockets get the changes now; its hub skips them when they come back.
        hub.hand_out(event)
        event = {**event, "origin": hub.channel}
    try:
        await get_channel_layer().group_send(group_name(workbook_id), event)
    except Exception:
        first, last = changes[0].rev, changes[-1].rev
        logger.warning("broadcast of workbook %s revs %s-%s failed; sockets will catch up from the log", workbook_id, first, last, exc_info=True)
        return False
    return True


async def workbook_deleted(workbook_id: int) -> None:
    await get_channel_layer().group_send(
        group_name(workbook_id), {"type": "workbook.closed", "workbook": workbook_id, "code": CLOSE_WORKBOOK_DELETED}
    )


async def member_changed(workbook_id: int, user_id: int, *, removed: bool) -> None:
    """Closes that user's sockets on the workbook: for good when removed, to reconnect with the new role otherwise."""
    code = CLOSE_ACCESS_REMOVED if removed else CLOSE_ROLE_CHANGED
    await get_channel_layer().group_send(
        group_name(workbook_id), {"type": "workbook.closed", "workbook": workbook_id, "code": code, "user_id": user_id}
    )


async def login_changed(user_id: int, *, ended_session: str | None = None) -> None:
    """Tells every socket of the user, on every process, that a login of theirs may have ended: each
    checks its own session and closes (4401) if it no longer holds. Those of ``ended_session`` (the
    digest of the session key, workbooks.sessions.digest: never the key) close without checking: a logout
    announces itself before its session is deleted."""
    event = {"type": "login.changed", "user": user_id, "ended": ended_session}
    await get_channel_layer().group_send(fanout.user_group_name(user_id), event)


async def announce(consumer, entry: PresenceEntry, *, query: bool = False) -> None:
    """Tells every process on the workbook where this connection is; ``query`` asks the others to answer
    with their own sockets' presence (for a process's first socket on the workbook)."""
    event = {"type": "presence.update", "workbook": consumer.workbook_id, **fanout.presence_fields(consumer.conn, entry)}
    if query:
        event["reply_to"] = fanout.hub().channel
    await get_channel_layer().group_send(group_name(consumer.workbook_id), event)


async def depart(consumer) -> None:
    await get_channel_layer().group_send(
        group_name(consumer.workbook_id), {"type": "presence.leave", "workbook": consumer.workbook_id, "conn": consumer.conn}
    )


changes_sync = async_to_sync(changes)
workbook_deleted_sync = async_to_sync(workbook_deleted)
member_changed_sync = async_to_sync(member_changed)
login_changed_sync = async_to_sync(login_changed)
