"""The workbook socket through Channels' WebsocketCommunicator and the whole ASGI stack (Origin check,
session authentication, routing), once on the in-memory channel layer and once on a real Redis one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import runpy
import uuid
from types import SimpleNamespace

import pytest
from channels.db import database_sync_to_async
from channels.layers import channel_layers, get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.db import DataError, OperationalError
from django.test import Client
from model_bakery import baker

from proj.asgi import application
from workbooks import broadcast, fanout, protocol, selectors, services, sessions
from workbooks.domain.flow import SendBacklog
from workbooks.domain.grid import Grid
from workbooks.domain.rules import user_color
from workbooks.domain.values import CellWrite, Change, InsertRows, SetCells
from workbooks.models import Member, Workbook
from workbooks.services import batching

WAIT = 10  # seconds to wait for an expected message before failing
ORIGIN = (b"origin", b"http://127.0.0.1")
ROWS, COLS = 4, 3  # the workbook under test: row ids 1-4, column ids 1-3

pytestmark = pytest.mark.django_db(transaction=True)


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="session")
def redis_channel_layers(redis_url):
    """CHANNEL_LAYERS exactly as proj/settings.py builds it for a deployment with REDIS_URL set."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("REDIS_URL", redis_url)
        env.delenv("TABULA_ENV", raising=False)
        return runpy.run_path(str(django_settings.BASE_DIR / "proj" / "settings.py"))["CHANNEL_LAYERS"]


@pytest.fixture(params=["memory", "redis"], autouse=True)
async def layer(request, settings):
    """Every test runs on the in-memory channel layer, then on the production Redis (pub/sub) layer, with a prefix of its own."""
    if request.param == "redis":
        production = request.getfixturevalue("redis_channel_layers")["default"]
        assert production["BACKEND"] == "channels_redis.pubsub.RedisPubSubChannelLayer"
        settings.CHANNEL_LAYERS = {"default": {**production, "CONFIG": {**production["CONFIG"], "prefix": f"test-{uuid.uuid4().hex}"}}}
    else:
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.clear()
    assert type(get_channel_layer()).__name__ == ("RedisPubSubChannelLayer" if request.param == "redis" else "InMemoryChannelLayer")
    yield request.param
    hub = fanout.current_hub()
    if hub is not None:
        hub.stop()
    if request.param == "redis":
        await get_channel_layer().flush()  # closes its connections
    if hub is not None:
        await hub.wait_stopped()  # else the event loop's shutdown can wait for its read for ever
    channel_layers.backends.clear()


def limits(settings, **changes):
    settings.TABULA_LIMITS = {**django_settings.TABULA_LIMITS, **changes}


def session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies[django_settings.SESSION_COOKIE_NAME].value}".encode()


@pytest.fixture
def team():
    """A workbook owned by ada, shared with bob (editor) and cy (viewer); dee has no role on it."""
    users = {name: baker.make(get_user_model(), username=name) for name in ("ada", "bob", "cy", "dee")}
    snap = services.create_workbook(user=users["ada"], name="Budget", rows=ROWS, cols=COLS)
    baker.make(Member, workbook_id=snap.id, user=users["bob"], role="editor")
    baker.make(Member, workbook_id=snap.id, user=users["cy"], role="viewer")
    return SimpleNamespace(workbook_id=snap.id, cookie={name: session_cookie(u) for name, u in users.items()}, **users)


class Socket:
    """One WebsocketCommunicator, read message by message."""

    def __init__(self, communicator: WebsocketCommunicator):
        self.communicator = communicator
        self.hello: dict | None = None

    async def output(self) -> dict:
        try:
            return await self.communicator.receive_output(WAIT)
        except TimeoutError:
            pytest.fail(f"nothing from the server within {WAIT} s")

    async def send(self, message) -> None:
        await self.communicator.send_to(text_data=message if isinstance(message, str) else json.dumps(message))

    async def receive(self, *, skip=("presence",)) -> dict:
        """The next message whose type is not in ``skip``; fails if the socket closes instead."""
        while True:
            output = await self.output()
            assert output["type"] == "websocket.send", f"socket closed with {output.get('code')} while a message was expected"
            message = json.loads(output["text"])
            if message["type"] not in skip:
                return message

    async def change(self) -> dict:
        message = await self.receive()
        assert message["type"] == "change", message
        return message

    async def changes(self, count: int) -> list[dict]:
        return [await self.change() for _ in range(count)]

    async def until(self, predicate, *, skip=()) -> dict:
        """Reads until a message satisfies ``predicate``; the ones before it must be of a type in ``skip``."""
        while True:
            message = await self.receive(skip=())
            if predicate(message):
                return message
            assert message["type"] in skip, message

    async def close_code(self) -> int:
        """Reads past any pending messages to the server's close and returns its code."""
        while True:
            output = await self.output()
            if output["type"] == "websocket.close":
                return output.get("code", 1000)


@pytest.fixture
async def sockets(layer):
    """``await sockets.open(cookie, workbook_id)`` connects (and reads hello); every socket is closed afterwards."""
    opened: list[WebsocketCommunicator] = []

    def communicator(workbook_id, headers, extra_scope=None):
        app = application
        if extra_scope is not None:  # what a server puts in the scope (daphne: workbooks.routing)

            async def app(scope, receive, send):
                return await application({**scope, **extra_scope(comm)}, receive, send)

        comm = WebsocketCommunicator(app, f"/ws/workbooks/{workbook_id}/", headers=headers)
        opened.append(comm)
        return comm

    async def handshake(workbook_id, headers, extra_scope=None) -> tuple[bool, WebsocketCommunicator]:
        comm = communicator(workbook_id, headers, extra_scope)
        connected, _ = await comm.connect(timeout=WAIT)
        return connected, comm

    async def open_(cookie: bytes, workbook_id: int, *, extra_scope=None) -> Socket:
        """``extra_scope(communicator)``, when given, returns keys to add to the socket's scope."""
        connected, comm = await handshake(workbook_id, [ORIGIN, (b"cookie", cookie)], extra_scope)
        assert connected, "handshake refused"
        socket = Socket(comm)
        socket.hello = await socket.receive()
        assert socket.hello["type"] == "hello"
        return socket

    yield SimpleNamespace(open=open_, handshake=handshake)
    # Those not done yet are still open (the others the server closed, or a failed wait stopped).
    # The short timeout: with redis-py 8.1 a cancelled channels_redis receive sometimes swallows the
    # cancellation and blocks in a new read until the next message; the second cancel, after the
    # timeout, ends it. (In daphne, the next message for that process does.)
    await asyncio.gather(*(comm.disconnect(timeout=1) for comm in opened if not comm.future.done()))


def op(kind: str, op_id: str | None = None, **fields) -> dict:
    return {"type": kind, "op": op_id or uuid.uuid4().hex, **fields}


def cell(row, col, value) -> dict:
    return {"row": row, "col": col, "value": value}


@database_sync_to_async
def snapshot_json(workbook_id: int) -> dict:
    return protocol.snapshot(selectors.snapshot(workbook_id=workbook_id, role="owner"))


@database_sync_to_async
def workbook_rev(workbook_id: int) -> int:
    return Workbook.objects.get(pk=workbook_id).rev


@database_sync_to_async
def commit_quietly(workbook_id: int, user, operation):
    """Commits without broadcasting, as when a broadcast is lost or still on its way."""
    return services.commit_operation(workbook_id=workbook_id, user=user, operation=operation).change


@database_sync_to_async
def http(user, method: str, path: str, body=None) -> tuple[int, dict]:
    client = Client()
    client.force_login(user)
    response = getattr(client, method)(path, data=json.dumps(body) if body is not None else None, content_type="application/json")
    return response.status_code, response.json()


# ---------------------------------------------------------------- handshake


class WorkbookConsumerHandshakeTest:
    async def test_connect_anonymous_refused(self, team, sockets):
        connected, _ = await sockets.handshake(team.workbook_id, [ORIGIN])
        assert not connected

    async def test_connect_stale_session_cookie_refused(self, team, sockets):
        connected, _ = await sockets.handshake(team.workbook_id, [ORIGIN, (b"cookie", b"sessionid=not-a-session")])
        assert not connected

    async def test_connect_user_without_role_refused(self, team, sockets):
        connected, _ = await sockets.handshake(team.workbook_id, [ORIGIN, (b"cookie", team.cookie["dee"])])
        assert not connected

    async def test_connect_workbook_that_does_not_exist_refused(self, team, sockets):
        connected, _ = await sockets.handshake(team.workbook_id + 1000, [ORIGIN, (b"cookie", team.cookie["ada"])])
        assert not connected

    @pytest.mark.parametrize("origin", [b"http://evil.example", b"http://127.0.0.1.evil.example", b"null"])
    async def test_connect_foreign_origin_refused(self, team, sockets, origin):
        connected, _ = await sockets.handshake(team.workbook_id, [(b"origin", origin), (b"cookie", team.cookie["ada"])])
        assert not connected

    async def test_connect_without_origin_refused(self, team, sockets):
        connected, _ = await sockets.handshake(team.workbook_id, [(b"cookie", team.cookie["ada"])])
        assert not connected

    async def test_connect_beyond_sockets_per_user_refused_others_and_later_ones_accepted(self, team, sockets, settings):
        settings.TABULA_MAX_SOCKETS_PER_USER = 2
        bob_tabs = [await sockets.open(team.cookie["bob"], team.workbook_id) for _ in range(2)]

        connected, _ = await sockets.handshake(team.workbook_id, [ORIGIN, (b"cookie", team.cookie["bob"])])

        assert not connected
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)  # the limit is per user
        await bob_tabs[0].communicator.disconnect(timeout=1)
        again = await sockets.open(team.cookie["bob"], team.workbook_id)
        await again.send(set_one("still-editing", "x"))
        assert [(c["rev"], c["op"]) for c in (await again.change(), await ada.change())] == [(1, "still-editing")] * 2

    @pytest.mark.parametrize("name, role", [("ada", "owner"), ("bob", "editor"), ("cy", "viewer")])
    async def test_connect_member_gets_hello_with_rev_me_role_and_presence(self, team, sockets, name, role):
        await commit_quietly(team.workbook_id, team.ada, InsertRows("before-hello", None, 1))
        user = getattr(team, name)
        color = user_color(user.pk)

        socket = await sockets.open(team.cookie[name], team.workbook_id)

        assert socket.hello == {
            "type": "hello",
            "rev": 1,
            "me": {"id": user.pk, "name": name, "color": color},
            "role": role,
            "presence": [{"id": user.pk, "name": name, "color": color, "sheet": None, "selection": []}],
        }


# ---------------------------------------------------------------- operations


class WorkbookConsumerOperationTest:
    async def test_every_kind_reaches_every_socket_sender_included_in_rev_order(self, team, sockets):
        before = await snapshot_json(team.workbook_id)
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)
        bob = await sockets.open(team.cookie["bob"], team.workbook_id)
        cy = await sockets.open(team.cookie["cy"], team.workbook_id)
        sent = [
            op("set", "k1", cells=[cell(1, 1, "a"), cell(2, 3, 4.5)]),
            op("insert_rows", "k2", before=2, count=2),
            op("delete_rows", "k3", rows=[1]),
            op("insert_cols", "k4", before=None, count=1),
            op("delete_cols", "k5", cols=[2]),
            op("set", "k6", cells=[cell(5, 4, True), cell(2, 3, None), cell(3, 1, -7)]),
        ]
        for message in sent:
            await ada.send(message)

        seen = {name: await socket.changes(len(sent)) for name, socket in (("ada", ada), ("bob", bob), ("cy", cy))}

        assert seen["ada"] == seen["bob"] == seen["cy"]
        changes = seen["ada"]
        assert [c["rev"] for c in changes] == [1, 2, 3, 4, 5, 6]
        assert [c["op"] for c in changes] == ["k1", "k2", "k3", "k4", "k5", "k6"]
        assert all(c["by"] == {"id": team.ada.pk, "name": "ada"} and c["at"].endswith("Z") for c in changes)
        assert all(c["computed"] == [] for c in changes)  # no formulas: no other values altered
        payloads = [{k: v for k, v in c.items() if k not in ("type", "rev", "op", "by", "at", "computed")} for c in changes]
        assert payloads == [
            {"kind": "set", "sheet": 1, "cells": [cell(1, 1, "a"), cell(2, 3, 4.5)], "overwritten": []},
            {"kind": "insert_rows", "sheet": 1, "before": 2, "rows": [5, 6]},
            {"kind": "delete_rows", "sheet": 1, "rows": [1]},
            {"kind": "insert_cols", "sheet": 1, "before": None, "cols": [4]},
            {"kind": "delete_cols", "sheet": 1, "cols": [2]},
            {"kind": "set", "sheet": 1, "cells": [cell(5, 4, True), cell(2, 3, None), cell(3, 1, -7)], "overwritten": []},
        ]
        model = Grid.from_snapshot(before)
        for change in changes:
            model.apply(change)
        assert model.matches(await snapshot_json(team.workbook_id))

    async def test_set_on_row_deleted_meanwhile_cell_dropped_from_change(self, team, sockets):
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)
        bob = await sockets.open(team.cookie["bob"], team.workbook_id)
        await bob.send(op("delete_rows", "gone", rows=[2]))
        assert (await ada.change())["op"] == "gone"

        await ada.send(op("set", "late", cells=[cell(2, 1, "lost"), cell(3, 1, "kept")]))

        change = await ada.change()
        assert (change["rev"], change["op"], change["cells"]) == (2, "late", [cell(3, 1, "kept")])
        assert [c["op"] for c in await bob.changes(2)] == ["gone", "late"]

    async def test_delete_of_rows_already_deleted_applies_only_live_ones(self, team, sockets):
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)
        await ada.send(op("delete_cols", "first", cols=[2]))
        await ada.send(op("delete_cols", "second", cols=[2, 3]))

        first, second = await ada.changes(2)

        assert (first["cols"], second["cols"]) == ([2], [3])

    async def test_insert_before_row_deleted_meanwhile_not_found_and_nothing_changes(self, team, sockets):
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)
        bob = await sockets.open(team.cookie["bob"], team.workbook_id)
        await bob.send(op("delete_rows", "gone", rows=[2]))
        assert (await bob.change())["rev"] == 1

        await ada.send(op("insert_rows", "there", before=2, count=1))

        assert (await ada.change())["op"] == "gone"
        error = await ada.receive()
        assert (error["type"], error["op"], error["code"]) == ("error", "there", "not_found")
        assert await workbook_rev(team.workbook_id) == 1

    async def test_viewer_operation_forbidden_and_others_see_nothing(self, team, sockets):
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)
        cy = await sockets.open(team.cookie["cy"], team.workbook_id)

        await cy.send(op("set", "sneaky", cells=[cell(1, 1, "x")]))

        error = await cy.receive()
        assert (error["type"], error["op"], error["code"]) == ("error", "sneaky", "forbidden")
        await ada.send(op("set", "fine", cells=[cell(1, 1, "y")]))
        assert [(c["rev"], c["op"]) for c in (await ada.change(), await cy.change())] == [(1, "fine"), (1, "fine")]


class WorkbookConsumerUndoTest:
    async def test_undo_in_one_tab_takes_back_only_its_edit_others_see_it(self, team, sockets):
        ada_tab = await sockets.open(team.cookie["ada"], team.workbook_id)
        ada_other_tab = await sockets.open(team.cookie["ada"], team.workbook_id)
        bob = await sockets.open(team.cookie["bob"], team.workbook_id)
        await ada_tab.send(op("set", "a1", cells=[cell(1, 1, "tab one")], session="one"))
        await ada_other_tab.send(op("set", "a2", cells=[cell(2, 1, "tab two")], session="two"))
        await bob.send(op("set", "b1", cells=[cell(1, 2, "bob")]))
        assert len(await bob.changes(3)) == 3

        await ada_tab.send(op("undo", "u1", session="one"))

        undone = await bob.change()
        assert (undone["kind"], undone["op"], undone["undo_of"], undone["skipped"]) == ("batch", "u1", 1, [])
        assert undone["steps"] == [{"kind": "set", "sheet": 1, "cells": [cell(1, 1, None)], "overwritten": []}]
        assert "replaced" not in undone
        assert [r["values"][:2] for r in (await snapshot_json(team.workbook_id))["sheets"][0]["rows"][:2]] == [[None, "bob"], ["tab two", None]]

    async def test_nothing_to_undo_conflict_nothing_changes(self, team, sockets):
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)

        await ada.send(op("redo", "r1", session="one"))

        error = await ada.receive()
        assert (error["type"], error["op"], error["code"]) == ("error", "r1", "conflict")
        assert await workbook_rev(team.workbook_id) == 0

    async def test_viewer_undo_forbidden(self, team, sockets):
        cy = await sockets.open(team.cookie["cy"], team.workbook_id)

        await cy.send(op("undo", "u"))

        error = await cy.receive()
        assert (error["type"], error["op"], error["code"]) == ("error", "u", "forbidden")


class WorkbookConsumerHttpEditTest:
    async def test_service_apply_operation_reaches_every_socket(self, team, sockets):
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)
        cy = await sockets.open(team.cookie["cy"], team.workbook_id)

        applied = await database_sync_to_async(services.apply_operation)(
            workbook_id=team.workbook_id, user=team.bob, operation=SetCells("svc", (CellWrite(2, 2, "from the service"),))
        )

        expected = wire(applied.change)
        assert expected == await ada.change() == await cy.change()
        assert expected["by"] == {"id": team.bob.pk, "name": "bob"}

    async def test_http_post_op_reaches_every_socket_as_the_response_change(self, team, sockets):
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)
        bob = await sockets.open(team.cookie["bob"], team.workbook_id)

        status, body = await http(team.bob, "post", f"/api/workbooks/{team.workbook_id}/ops", op("insert_cols", "via-http", before=1, count=2))

        assert status == 201
        assert body["kind"] == "insert_cols" and body["cols"] == [4, 5] and body["rev"] == 1
        assert await ada.change() == body == await bob.change()

    async def test_http_rename_reaches_sockets_as_rename_change(self, team, sockets):
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)

        status, body = await http(team.bob, "patch", f"/api/workbooks/{team.workbook_id}/", {"name": "Budget 2026"})

        assert status == 200
        change = await ada.change()
        assert change == body
        assert (change["kind"], change["name"], change["rev"]) == ("rename", "Budget 2026", 1)

    async def test_http_retry_of_socket_op_answers_original_and_broadcasts_nothing(self, team, sockets):
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)
        bob = await sockets.open(team.cookie["bob"], team.workbook_id)
        await ada.send(op("set", "once", cells=[cell(1, 1, "first")]))
        original = await ada.change()

        status, body = await http(team.ada, "post", f"/api/workbooks/{team.workbook_id}/ops", op("set", "once", cells=[cell(1, 1, "second")]))

        assert (status, body) == (200, original)
        await ada.send(op("set", "next", cells=[cell(1, 2, "x")]))
        assert [(c["rev"], c["op"]) for c in await bob.changes(2)] == [(1, "once"), (2, "next")]
        assert (await snapshot_json(team.workbook_id))["sheets"][0]["rows"][0]["values"][:2] == ["first", "x"]


class WorkbookConsumerDuplicateOpTest:
    async def test_duplicate_op_sender_gets_original_change_and_rev_does_not_advance(self, team, sockets):
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)
        bob = await sockets.open(team.cookie["bob"], team.workbook_id)
        await ada.send(op("set", "retry-me", cells=[cell(1, 1, "first")]))
        original = await ada.change()

        await ada.send(op("set", "retry-me", cells=[cell(1, 1, "second")]))

        assert await ada.change() == original
        assert await workbook_rev(team.workbook_id) == 1
        await ada.send(op("set", "after", cells=[cell(2, 2, "z")]))
        assert (await ada.change())["rev"] == 2
        assert [(c["rev"], c["op"]) for c in await bob.changes(2)] == [(1, "retry-me"), (2, "after")]
        assert (await snapshot_json(team.workbook_id))["sheets"][0]["rows"][0]["values"][0] == "first"

    async def test_duplicate_op_committed_ahead_of_socket_answered_in_rev_order(self, team, sockets):
        # The op was committed, but neither it nor the change before it reached this socket yet
        # (their broadcasts are on their way): the retry's answer must not jump the queue.
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)
        await commit_quietly(team.workbook_id, team.bob, SetCells("bob-first", (CellWrite(1, 1, "b"),)))
        await commit_quietly(team.workbook_id, team.ada, SetCells("lost-ack", (CellWrite(1, 2, "a"),)))

        await ada.send(op("set", "lost-ack", cells=[cell(1, 2, "a")]))

        assert [(c["rev"], c["op"]) for c in await ada.changes(2)] == [(1, "bob-first"), (2, "lost-ack")]
        await ada.send(op("set", "next", cells=[cell(1, 3, "c")]))
        assert [(c["rev"], c["op"]) for c in await ada.changes(1)] == [(3, "next")]


def wire(change: Change) -> dict:
    """A change as the socket sends it."""
    return json.loads(protocol.encode(protocol.change(change)))


# ---------------------------------------------------------------- bad input


def set_one(op_id, value, row=1, col=1) -> dict:
    return op("set", op_id, cells=[cell(row, col, value)])


BAD_MESSAGES = [
    # pytest.param(message as sent, error code, op echoed, id=...)
    pytest.param("{not json", "invalid", None, id="malformed-json"),
    pytest.param("[1, 2]", "invalid", None, id="json-array"),
    pytest.param('{"type": "set", "op": "nan", "cells": [{"row": 1, "col": 1, "value": NaN}]}', "invalid", None, id="json-nan"),
    pytest.param({"type": "explode", "op": "u1"}, "invalid", "u1", id="unknown-type"),
    pytest.param({"op": "u2", "cells": []}, "invalid", "u2", id="missing-type"),
    pytest.param({"type": "set", "op": 7, "cells": [cell(1, 1, "x")]}, "invalid", None, id="op-not-string"),
    pytest.param({"type": "set", "op": "x" * 65, "cells": [cell(1, 1, "x")]}, "invalid", None, id="op-too-long"),
    pytest.param({"type": "set", "cells": [cell(1, 1, "x")]}, "invalid", None, id="op-missing"),
    pytest.param(op("set", "w1", cells="A1"), "invalid", "w1", id="cells-not-list"),
    pytest.param(op("set", "w2", cells=[]), "invalid", "w2", id="cells-empty"),
    pytest.param(op("set", "w3", cells=[cell("1", 1, "x")]), "invalid", "w3", id="row-id-string"),
    pytest.param(op("set", "w4", cells=[cell(1, 1.0, "x")]), "invalid", "w4", id="col-id-float"),
    pytest.param(op("set", "w5", cells=[{"row": 1, "col": 1}]), "invalid", "w5", id="cell-without-value"),
    pytest.param(set_one("w6", {"formula": "=A1"}), "invalid", "w6", id="value-object"),
    pytest.param(set_one("w7", [1, 2]), "invalid", "w7", id="value-list"),
    pytest.param(set_one("w8", 2**60), "invalid", "w8", id="value-unsafe-integer"),
    pytest.param(op("insert_rows", "w9", before=None, count="2"), "invalid", "w9", id="count-string"),
    pytest.param(op("insert_rows", "w10", before=None, count=0), "invalid", "w10", id="count-zero"),
    pytest.param(op("insert_cols", "w11", before="A", count=1), "invalid", "w11", id="before-string"),
    pytest.param(op("delete_rows", "w12", rows=2), "invalid", "w12", id="rows-not-list"),
    pytest.param(op("delete_rows", "w13", rows=[True]), "invalid", "w13", id="row-id-boolean"),
    pytest.param(op("delete_cols", "w14", cols=[]), "invalid", "w14", id="cols-empty"),
    pytest.param({"type": "sync", "since": -1}, "invalid", None, id="sync-negative"),
    pytest.param({"type": "sync", "since": "0"}, "invalid", None, id="sync-string"),
    pytest.param({"type": "select", "ranges": [[1, 2]]}, "invalid", None, id="select-short-range"),
    pytest.param({"type": "select", "ranges": [[1, 1, 2, 2]] * 101}, "invalid", None, id="select-too-many-ranges"),
    pytest.param({"type": "select", "ranges": [[2**70, 1, 1, 1]]}, "invalid", None, id="select-huge-id"),
    pytest.param(op("set", "n1", cells=[cell(ROWS + 1, 1, "x")]), "not_found", "n1", id="set-unknown-row"),
    pytest.param(op("set", "n2", cells=[cell(1, 1, "ok"), cell(1, COLS + 1, "x")]), "not_found", "n2", id="set-unknown-col"),
    pytest.param(op("set", "n3", cells=[cell(0, 1, "x")]), "not_found", "n3", id="set-row-zero"),
    pytest.param(op("delete_rows", "n4", rows=[1, 999]), "not_found", "n4", id="delete-unknown-row"),
    pytest.param(op("delete_cols", "n5", cols=[-3]), "not_found", "n5", id="delete-negative-col"),
    pytest.param(op("insert_rows", "n6", before=999, count=1), "not_found", "n6", id="insert-before-unknown-row"),
    pytest.param(op("insert_cols", "n7", before=COLS + 1, count=1), "not_found", "n7", id="insert-before-unknown-col"),
    pytest.param(op("set", "n8", cells=[cell(2**70, 1, "x")]), "not_found", "n8", id="set-huge-row-id"),
    pytest.param(op("delete_cols", "n9", cols=[-(2**70)]), "not_found", "n9", id="delete-huge-negative-col"),
    pytest.param(op("insert_rows", "n10", before=2**64, count=1), "not_found", "n10", id="insert-before-huge-row"),
    pytest.param(set_one("t1", "x" * 10_001), "too_large", "t1", id="value-too-long"),
    pytest.param(op("set", "t2", cells=[cell(1, 1, i) for i in range(10_001)]), "too_large", "t2", id="too-many-cells"),
    pytest.param(op("insert_rows", "t3", before=None, count=10_001), "too_large", "t3", id="insert-too-many"),
]


class WorkbookConsumerBadInputTest:
    @pytest.mark.parametrize("message, code, op_id", BAD_MESSAGES)
    async def test_bad_message_error_to_sender_nothing_changes_sockets_stay_open(self, team, sockets, message, code, op_id):
        before = await snapshot_json(team.workbook_id)
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)
        bob = await sockets.open(team.cookie["bob"], team.workbook_id)

        await ada.send(message)

        error = await ada.receive()
        assert (error["type"], error["code"], error["op"]) == ("error", code, op_id)
        assert isinstance(error["message"], str) and error["message"]
        assert await snapshot_json(team.workbook_id) == before
        await ada.send(set_one("after", "fine"))
        assert [(c["rev"], c["op"]) for c in (await ada.change(), await bob.change())] == [(1, "after"), (1, "after")]

    async def test_binary_frame_invalid_and_socket_stays_open(self, team, sockets):
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)

        await ada.communicator.send_to(bytes_data=json.dumps(set_one("bin", "x")).encode())

        error = await ada.receive()
        assert (error["type"], error["code"]) == ("error", "invalid")
        await ada.send(set_one("text", "x"))
        assert (await ada.change())["rev"] == 1

    async def test_message_over_size_limit_closes_that_socket_4413_only(self, team, sockets, settings):
        limits(settings, max_message_bytes=2000)
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)
        bob = await sockets.open(team.cookie["bob"], team.workbook_id)

        await ada.send(set_one("big", "x" * 2000))

        assert await ada.close_code() == 4413
        await bob.send(set_one("small", "x" * 1000))
        assert [(c["rev"], c["op"]) for c in [await bob.change()]] == [(1, "small")]

    async def test_message_over_size_limit_in_bytes_not_characters_closes_4413(self, team, sockets, settings):
        limits(settings, max_message_bytes=2000)
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)
        message = json.dumps(set_one("wide", "é" * 1000), ensure_ascii=False)
        assert len(message) < 2000 < len(message.encode())

        await ada.send(message)

        assert await ada.close_code() == 4413
        assert await workbook_rev(team.workbook_id) == 0

    async def test_workbook_at_row_capacity_insert_too_large(self, team, sockets, settings):
        limits(settings, max_rows=ROWS + 1)
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)

        await ada.send(op("insert_rows", "two", before=None, count=2))
        error = await ada.receive()
        await ada.send(op("insert_rows", "one", before=None, count=1))

        assert (error["type"], error["code"], error["op"]) == ("error", "too_large", "two")
        change = await ada.change()
        assert (change["op"], change["rows"]) == ("one", [ROWS + 1])

    async def test_flood_beyond_rate_limited_other_sockets_unaffected(self, team, sockets, settings):
        limits(settings, ops_per_second=1, ops_burst=2)
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)
        bob = await sockets.open(team.cookie["bob"], team.workbook_id)
        flood = [set_one(f"flood-{i}", i) for i in range(10)]

        for message in flood:
            await ada.send(message)
        answers = {}
        while len(answers) < len(flood):
            message = await ada.receive()
            answers[message["op"]] = message

        applied = [a for a in answers.values() if a["type"] == "change"]
        refused = [a for a in answers.values() if a["type"] == "error"]
        assert refused and {a["code"] for a in refused} == {"rate_limited"}
        assert len(applied) + len(refused) == len(flood)
        assert sorted(a["rev"] for a in applied) == list(range(1, len(applied) + 1))
        assert await workbook_rev(team.workbook_id) == len(applied)
        await bob.send(set_one("bob-calm", "ok", row=2))
        seen = await bob.changes(len(applied) + 1)
        assert [c["op"] for c in seen[:-1]] == [a["op"] for a in sorted(applied, key=lambda a: a["rev"])]
        assert (seen[-1]["op"], seen[-1]["rev"]) == ("bob-calm", len(applied) + 1)

    async def test_message_over_rate_refused_before_it_is_parsed_op_named(self, team, sockets, settings):
        limits(settings, ops_per_second=1, ops_burst=1)
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)
        await ada.send(set_one("first", "x"))
        assert (await ada.change())["op"] == "first"

        await ada.send('{"type": "set", "op": "second", "cells": [not json at all')

        error = await ada.receive()
        assert (error["type"], error["code"], error["op"]) == ("error", "rate_limited", "second")

    async def test_viewer_message_over_16_kib_forbidden_without_parsing(self, team, sockets, monkeypatch):
        decoded = []
        decode = protocol.decode
        monkeypatch.setattr(protocol, "decode", lambda text, limits: decoded.append(len(text)) or decode(text, limits))
        cy = await sockets.open(team.cookie["cy"], team.workbook_id)

        await cy.send(set_one("big", "x" * 17_000))

        error = await cy.receive()
        assert (error["type"], error["code"], error["op"]) == ("error", "forbidden", "big")
        assert decoded == []
        await cy.send({"type": "sync", "since": 0})
        assert await cy.receive() == {"type": "synced", "rev": 0}
        assert await workbook_rev(team.workbook_id) == 0


class WorkbookConsumerServerFailureTest:
    """The server failing to handle one message answers that message; only the database or the channel
    layer being unavailable closes the socket (4503, its client comes back later)."""

    async def test_failure_handling_message_error_invalid_logged_socket_stays_open(self, team, sockets, monkeypatch, caplog):
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)
        submit = services.submit_operation

        def broken(**kwargs):
            if kwargs["operation"].op == "unlucky":
                raise RuntimeError("a bug")
            return submit(**kwargs)

        monkeypatch.setattr(services, "submit_operation", broken)

        await ada.send(set_one("unlucky", "x"))

        error = await ada.receive()
        assert (error["type"], error["code"], error["op"]) == ("error", "invalid", "unlucky")
        assert any(r.exc_info and isinstance(r.exc_info[1], RuntimeError) for r in caplog.records if r.levelno >= logging.ERROR)
        await ada.send(set_one("lucky", "y"))
        assert [(c["rev"], c["op"]) for c in [await ada.change()]] == [(1, "lucky")]

    async def test_operation_failing_in_database_error_invalid_socket_stays_open(self, team, sockets, monkeypatch, caplog):
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)
        bob = await sockets.open(team.cookie["bob"], team.workbook_id)
        commit_batch = batching._commit_batch

        def refusing(workbook_id, requests):
            if requests[0][1].op == "refused":
                raise DataError("value too long for the column")
            return commit_batch(workbook_id, requests)

        monkeypatch.setattr(batching, "_commit_batch", refusing)

        await ada.send(set_one("refused", "x"))

        error = await ada.receive()
        assert (error["type"], error["code"], error["op"]) == ("error", "invalid", "refused")
        assert any(r.exc_info and isinstance(r.exc_info[1], DataError) for r in caplog.records if r.levelno >= logging.ERROR)
        await ada.send(set_one("accepted", "y"))
        assert [c["op"] for c in (await ada.change(), await bob.change())] == ["accepted", "accepted"]

    async def test_database_unavailable_closes_socket_4503(self, team, sockets, monkeypatch):
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)

        def unavailable(workbook_id, requests):
            raise OperationalError("the database system is starting up")

        monkeypatch.setattr(batching, "_commit_batch", unavailable)

        await ada.send(set_one("later", "x"))

        assert await ada.close_code() == broadcast.CLOSE_UNAVAILABLE


# ---------------------------------------------------------------- catching up


@database_sync_to_async
def set_history_floor(workbook_id: int, floor: int) -> None:
    Workbook.objects.filter(pk=workbook_id).update(history_floor=floor)


async def commit_sets(team, count: int) -> list[Change]:
    """Commits ``count`` one-cell sets by bob without broadcasting them."""
    return [await commit_quietly(team.workbook_id, team.bob, SetCells(f"quiet-{i}", (CellWrite(1 + i % ROWS, 1, i),))) for i in range(count)]


class WorkbookConsumerSyncTest:
    async def test_sync_since_r_sends_missing_changes_in_order_then_synced(self, team, sockets):
        committed = await commit_sets(team, 3)
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)
        assert ada.hello["rev"] == 3

        await ada.send({"type": "sync", "since": 1})

        assert [await ada.receive() for _ in range(3)] == [*map(wire, committed[1:]), {"type": "synced", "rev": 3}]

    async def test_sync_since_current_rev_only_synced(self, team, sockets):
        await commit_sets(team, 2)
        cy = await sockets.open(team.cookie["cy"], team.workbook_id)

        await cy.send({"type": "sync", "since": 2})

        assert await cy.receive() == {"type": "synced", "rev": 2}

    async def test_sync_then_live_changes_continue_without_repeats(self, team, sockets):
        committed = await commit_sets(team, 2)
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)
        await ada.send({"type": "sync", "since": 0})
        assert [await ada.receive() for _ in range(3)] == [*map(wire, committed), {"type": "synced", "rev": 2}]

        await ada.send(set_one("live", "x"))

        assert [(c["rev"], c["op"]) for c in [await ada.change()]] == [(3, "live")]

    async def test_sync_at_history_floor_sends_kept_changes(self, team, sockets):
        committed = await commit_sets(team, 3)
        await set_history_floor(team.workbook_id, 2)
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)

        await ada.send({"type": "sync", "since": 2})

        assert [await ada.receive() for _ in range(2)] == [wire(committed[2]), {"type": "synced", "rev": 3}]

    async def test_sync_below_history_floor_reload(self, team, sockets):
        await commit_sets(team, 3)
        await set_history_floor(team.workbook_id, 2)
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)

        await ada.send({"type": "sync", "since": 1})

        assert await ada.receive() == {"type": "reload"}
        await ada.send(set_one("after-reload", "x"))
        assert [(c["rev"], c["op"]) for c in [await ada.change()]] == [(4, "after-reload")]

    async def test_sync_ahead_of_workbook_reload(self, team, sockets):
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)

        await ada.send({"type": "sync", "since": 5})

        assert await ada.receive() == {"type": "reload"}

    async def test_sync_more_changes_than_limit_reload(self, team, sockets, settings):
        limits(settings, max_sync_changes=2)
        await commit_sets(team, 3)
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)

        await ada.send({"type": "sync", "since": 0})
        assert await ada.receive() == {"type": "reload"}
        await ada.send({"type": "sync", "since": 1})
        assert [m["type"] for m in [await ada.receive() for _ in range(3)]] == ["change", "change", "synced"]


class WorkbookConsumerSlowClientTest:
    """The server's transport pauses a socket's ``SendBacklog`` when its client stops reading (daphne's,
    through workbooks.routing.SendBacklogMiddleware; tests/integration has that for real). Here the test
    plays the transport."""

    async def test_backlog_over_limit_reload_then_no_broadcasts_until_sync(self, team, sockets):
        backlog = SendBacklog(limit=2_000)  # more than presence messages take, less than the first change
        bob = await sockets.open(team.cookie["bob"], team.workbook_id, extra_scope=lambda _: {"send_backlog": backlog})
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)
        backlog.pauseProducing()
        await ada.send(set_one("one", "x" * 3_000))
        assert (await bob.change())["rev"] == 1  # sent while paused: over the limit now
        await ada.send(set_one("two", "2"))
        await ada.send(set_one("three", "3"))

        assert await bob.receive() == {"type": "reload"}
        assert [c["rev"] for c in await ada.changes(3)] == [1, 2, 3]  # the reader missed nothing

        backlog.resumeProducing()  # bob read everything, reloaded the snapshot (rev 1 or later) and syncs
        await bob.send({"type": "sync", "since": 1})
        assert [(m["type"], m.get("rev")) for m in [await bob.receive() for _ in range(3)]] == [("change", 2), ("change", 3), ("synced", 3)]
        assert [u["name"] for u in (await bob.receive(skip=()))["users"]] == ["ada", "bob"]  # presence again

        await ada.send(set_one("four", "4"))
        assert (await bob.change())["rev"] == 4  # broadcasts again

    async def test_backlog_paused_under_limit_nothing_dropped(self, team, sockets):
        backlog = SendBacklog(limit=1_000_000)
        bob = await sockets.open(team.cookie["bob"], team.workbook_id, extra_scope=lambda _: {"send_backlog": backlog})
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)
        backlog.pauseProducing()
        for n in range(5):
            await ada.send(set_one(f"op-{n}", str(n)))

        assert [c["rev"] for c in await bob.changes(5)] == [1, 2, 3, 4, 5]
        assert 0 < backlog.queued <= backlog.limit


class WorkbookConsumerDeliverNowTest:
    """daphne gives the consumer ``send_now`` (workbooks.routing.SendBacklogMiddleware), with which the hub
    hands an idle socket its broadcasts at once. Here it writes to the communicator's output."""

    async def test_changes_and_presence_in_order_whichever_way_they_go(self, team, sockets):
        def send_now(comm):
            def write(texts):
                for text in texts:
                    comm.output_queue.put_nowait({"type": "websocket.send", "text": text})

            return {"send_now": write}

        bob = await sockets.open(team.cookie["bob"], team.workbook_id, extra_scope=send_now)
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)
        for n in range(30):
            await ada.send(set_one(f"op-{n}", str(n)))
        await ada.send({"type": "select", "ranges": [[1, 1, 1, 1]]})

        revs, moved = [], False  # the presence can overtake changes still being committed
        while len(revs) < 30 or not moved:
            message = await bob.receive(skip=())
            if message["type"] == "change":
                revs.append(message["rev"])
            else:
                moved = moved or presence_of(message) == [("ada", [[1, 1, 1, 1]]), ("bob", [])]
        assert revs == list(range(1, 31))


class WorkbookConsumerGapFillTest:
    async def test_broadcast_ahead_of_missing_revs_filled_from_log_in_order(self, team, sockets):
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)
        bob = await sockets.open(team.cookie["bob"], team.workbook_id)
        first, second = await commit_sets(team, 2)

        await broadcast.changes(team.workbook_id, [second])

        assert await ada.changes(2) == await bob.changes(2) == [wire(first), wire(second)]

    async def test_broadcasts_out_of_order_each_change_sent_once_in_order(self, team, sockets):
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)
        changes = await commit_sets(team, 3)

        for rev in (3, 1, 2):
            await broadcast.changes(team.workbook_id, [changes[rev - 1]])
        await ada.send(set_one("next", "x"))

        assert [(c["rev"], c["op"]) for c in await ada.changes(4)] == [(1, "quiet-0"), (2, "quiet-1"), (3, "quiet-2"), (4, "next")]

    async def test_gap_below_history_floor_reload_then_live_changes(self, team, sockets):
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)
        changes = await commit_sets(team, 3)
        await set_history_floor(team.workbook_id, 2)

        await broadcast.changes(team.workbook_id, [changes[2]])

        assert await ada.receive() == {"type": "reload"}
        await ada.send(set_one("next", "x"))
        assert [(c["rev"], c["op"]) for c in [await ada.change()]] == [(4, "next")]


# ---------------------------------------------------------------- presence


def presence_of(message: dict) -> list[tuple[str, list]]:
    return [(u["name"], u["selection"]) for u in message["users"]]


class WorkbookConsumerPresenceTest:
    async def test_second_user_joining_first_gets_presence_listing_both(self, team, sockets):
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)
        bob = await sockets.open(team.cookie["bob"], team.workbook_id)

        joined = await ada.receive(skip=())
        answered = await bob.receive(skip=())

        assert bob.hello["presence"] == [{"id": team.bob.pk, "name": "bob", "color": user_color(team.bob.pk), "sheet": None, "selection": []}]
        expected = {
            "type": "presence",
            "users": [
                {"id": team.ada.pk, "name": "ada", "color": user_color(team.ada.pk), "sheet": None, "selection": []},
                {"id": team.bob.pk, "name": "bob", "color": user_color(team.bob.pk), "sheet": None, "selection": []},
            ],
        }
        assert joined == answered == expected

    async def test_select_updates_selection_others_see(self, team, sockets):
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)
        cy = await sockets.open(team.cookie["cy"], team.workbook_id)
        assert presence_of(await ada.receive(skip=())) == [("ada", []), ("cy", [])]

        await cy.send({"type": "select", "ranges": [[1, 1, 2, 3], [4, 2, 4, 2]]})

        # Before it, ada may also get cy's answer to her own announcement (when it crossed cy's join).
        moved = await ada.until(lambda m: presence_of(m) != [("ada", []), ("cy", [])], skip=("presence",))
        assert presence_of(moved) == [("ada", []), ("cy", [[1, 1, 2, 3], [4, 2, 4, 2]])]

    async def test_disconnect_removes_user_from_others_presence(self, team, sockets):
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)
        bob = await sockets.open(team.cookie["bob"], team.workbook_id)
        assert presence_of(await ada.receive(skip=())) == [("ada", []), ("bob", [])]

        await bob.communicator.disconnect(timeout=1)

        # bob's answer to ada's own announcement may come first, when the two crossed.
        await ada.until(lambda m: presence_of(m) == [("ada", [])], skip=("presence",))

    async def test_same_user_in_two_tabs_listed_once_latest_selection(self, team, sockets):
        bob = await sockets.open(team.cookie["bob"], team.workbook_id)
        ada_one = await sockets.open(team.cookie["ada"], team.workbook_id)
        await ada_one.send({"type": "select", "ranges": [[1, 1, 1, 1]]})
        await bob.until(lambda m: presence_of(m) == [("ada", [[1, 1, 1, 1]]), ("bob", [])], skip=("presence",))

        ada_two = await sockets.open(team.cookie["ada"], team.workbook_id)
        await ada_two.send({"type": "select", "ranges": [[2, 2, 2, 2]]})

        latest = await bob.until(lambda m: presence_of(m) == [("ada", [[2, 2, 2, 2]]), ("bob", [])], skip=("presence",))
        assert [u["name"] for u in latest["users"]] == ["ada", "bob"]


class WorkbookConsumerHeartbeatTest:
    async def test_ping_answered_with_pong(self, team, sockets):
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)

        await ada.send({"type": "ping"})

        assert await ada.receive() == {"type": "pong"}

    async def test_silent_socket_closed_and_leaves_presence_pinging_one_stays(self, team, sockets, settings):
        settings.TABULA_SOCKET_SILENCE_SECONDS = 2
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)
        stop = asyncio.Event()

        async def keep_pinging():
            while not stop.is_set():
                await ada.send({"type": "ping"})
                await asyncio.sleep(0.25)

        pinging = asyncio.ensure_future(keep_pinging())
        bob = await sockets.open(team.cookie["bob"], team.workbook_id)
        await ada.until(lambda m: m["type"] == "presence" and presence_of(m) == [("ada", []), ("bob", [])], skip=("presence", "pong"))

        assert await bob.close_code() == broadcast.CLOSE_SILENT
        await ada.until(lambda m: m["type"] == "presence" and presence_of(m) == [("ada", [])], skip=("presence", "pong"))
        await ada.send(op("set", "still-here", cells=[cell(1, 1, "x")]))
        await ada.until(lambda m: m["type"] == "change" and m["op"] == "still-here", skip=("presence", "pong"))
        stop.set()
        await pinging


# ---------------------------------------------------------------- sockets the server closes


class WorkbookConsumerClosingTest:
    async def test_workbook_deleted_closes_every_socket_4404(self, team, sockets):
        opened = [await sockets.open(team.cookie[name], team.workbook_id) for name in ("ada", "bob", "cy")]

        await database_sync_to_async(services.delete_workbook)(workbook_id=team.workbook_id, user=team.ada)

        assert [await s.close_code() for s in opened] == [4404, 4404, 4404]

    async def test_member_removed_closes_only_their_sockets_4403(self, team, sockets):
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)
        bob_tabs = [await sockets.open(team.cookie["bob"], team.workbook_id) for _ in range(2)]
        cy = await sockets.open(team.cookie["cy"], team.workbook_id)

        status, _ = await http(team.ada, "delete", f"/api/workbooks/{team.workbook_id}/members/bob")

        assert status == 200
        assert [await tab.close_code() for tab in bob_tabs] == [4403, 4403]
        await ada.send(set_one("still-here", "x"))
        assert [(c["rev"], c["op"]) for c in (await ada.change(), await cy.change())] == [(1, "still-here"), (1, "still-here")]
        connected, _ = await sockets.handshake(team.workbook_id, [ORIGIN, (b"cookie", team.cookie["bob"])])
        assert not connected

    async def test_role_changed_closes_their_socket_4409_reconnect_has_new_role(self, team, sockets):
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)
        bob = await sockets.open(team.cookie["bob"], team.workbook_id)

        status, _ = await http(team.ada, "put", f"/api/workbooks/{team.workbook_id}/members/bob", {"role": "viewer"})

        assert status == 200
        assert await bob.close_code() == 4409
        again = await sockets.open(team.cookie["bob"], team.workbook_id)
        assert again.hello["role"] == "viewer"
        await again.send(set_one("now-viewer", "x"))
        error = await again.receive()
        assert (error["type"], error["code"], error["op"]) == ("error", "forbidden", "now-viewer")
        await ada.send(set_one("owner-edit", "y"))
        assert [(c["rev"], c["op"]) for c in [await ada.change()]] == [(1, "owner-edit")]


PASSWORD = "old-password-for-tests-1"


def log_in(user) -> tuple[Client, bytes]:
    """A session of the user's of its own: the client that holds it, and its cookie for a socket."""
    client = Client()
    client.force_login(user)
    return client, f"sessionid={client.cookies[django_settings.SESSION_COOKIE_NAME].value}".encode()


@database_sync_to_async
def with_password(user):
    user.set_password(PASSWORD)
    user.save()


class WorkbookConsumerLoginEndedTest:
    """A socket lives as long as the login it was opened with (workbooks/sessions.py)."""

    async def test_logout_closes_that_sessions_sockets_4401_other_session_stays(self, team, sockets):
        (laptop, laptop_cookie), (_, phone_cookie) = [await database_sync_to_async(log_in)(team.bob) for _ in range(2)]
        on_laptop = [await sockets.open(laptop_cookie, team.workbook_id) for _ in range(2)]
        on_phone = await sockets.open(phone_cookie, team.workbook_id)
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)

        response = await database_sync_to_async(laptop.post)("/accounts/logout/")

        assert response.status_code == 302
        assert [await s.close_code() for s in on_laptop] == [4401, 4401]
        await on_phone.send(set_one("from-phone", "x"))
        assert [c["op"] for c in (await on_phone.change(), await ada.change())] == ["from-phone", "from-phone"]

    async def test_another_user_logging_in_in_that_browser_closes_its_sockets_4401(self, team, sockets):
        # No logout: Django flushes the session when someone else logs in over it.
        await with_password(team.cy)
        laptop, laptop_cookie = await database_sync_to_async(log_in)(team.bob)
        bobs = await sockets.open(laptop_cookie, team.workbook_id)

        response = await database_sync_to_async(laptop.post)("/accounts/login/", {"username": "cy", "password": PASSWORD})

        assert response.status_code == 302
        assert await bobs.close_code() == 4401

    async def test_password_change_closes_every_session_of_that_user_4401_new_key_connects(self, team, sockets):
        await with_password(team.bob)
        (here, here_cookie), (_, elsewhere_cookie) = [await database_sync_to_async(log_in)(team.bob) for _ in range(2)]
        on_here = await sockets.open(here_cookie, team.workbook_id)
        on_elsewhere = await sockets.open(elsewhere_cookie, team.workbook_id)
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)
        form = {"old_password": PASSWORD, "new_password1": "new-password-for-tests-2", "new_password2": "new-password-for-tests-2"}

        response = await database_sync_to_async(here.post)("/accounts/password_change/", form)

        assert response.status_code == 302, response.content
        assert [await on_elsewhere.close_code(), await on_here.close_code()] == [4401, 4401]
        cycled = f"sessionid={here.cookies[django_settings.SESSION_COOKIE_NAME].value}".encode()
        assert cycled != here_cookie
        again = await sockets.open(cycled, team.workbook_id)  # Django kept this browser logged in
        connected, _ = await sockets.handshake(team.workbook_id, [ORIGIN, (b"cookie", elsewhere_cookie)])
        assert not connected
        await again.send(set_one("after-change", "x"))
        assert [c["op"] for c in (await again.change(), await ada.change())] == ["after-change", "after-change"]

    @pytest.mark.parametrize("end", ["deactivated", "deleted"])
    async def test_user_deactivated_or_deleted_sockets_close_4401(self, team, sockets, end):
        bob = await sockets.open(team.cookie["bob"], team.workbook_id)
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)

        if end == "deactivated":
            team.bob.is_active = False
            await database_sync_to_async(team.bob.save)()
        else:
            await database_sync_to_async(team.bob.delete)()

        assert await bob.close_code() == 4401
        await ada.send(set_one("ada-stays", "x"))
        assert (await ada.change())["op"] == "ada-stays"

    async def test_password_set_on_admin_user_page_closes_their_sockets_4401(self, team, sockets):
        await with_password(team.bob)
        _, cookie = await database_sync_to_async(log_in)(team.bob)
        bob = await sockets.open(cookie, team.workbook_id)
        root = await database_sync_to_async(baker.make)(get_user_model(), username="root", is_staff=True, is_superuser=True)
        admin, _ = await database_sync_to_async(log_in)(root)
        form = {"password1": "set-by-the-admin-3", "password2": "set-by-the-admin-3", "usable_password": "true"}

        response = await database_sync_to_async(admin.post)(f"/admin/auth/user/{team.bob.pk}/password/", form)

        assert response.status_code == 302, response.content
        assert await bob.close_code() == 4401

    async def test_login_elsewhere_and_other_saves_close_nothing(self, team, sockets):
        bob = await sockets.open(team.cookie["bob"], team.workbook_id)

        await database_sync_to_async(log_in)(team.bob)  # saves last_login only
        team.bob.first_name = "Bob"
        await database_sync_to_async(team.bob.save)()  # saves every field, the password unchanged
        await broadcast.login_changed(team.bob.pk, ended_session=sessions.digest("some-other-session"))

        await bob.send(set_one("still-here", "x"))
        assert (await bob.change())["op"] == "still-here"


@database_sync_to_async
def set_role_quietly(workbook_id: int, user, role: str | None) -> None:
    """Changes a role in the database only, as when its event was lost (say Redis restarted)."""
    if role is None:
        Member.objects.filter(workbook_id=workbook_id, user=user).delete()
    else:
        Member.objects.filter(workbook_id=workbook_id, user=user).update(role=role)


class WorkbookConsumerRoleRecheckTest:
    """A socket that missed being told its role went away or changed reads no more history and closes."""

    async def test_sync_after_role_removed_quietly_closes_4403_sends_no_history(self, team, sockets):
        await commit_sets(team, 2)
        bob = await sockets.open(team.cookie["bob"], team.workbook_id)
        await set_role_quietly(team.workbook_id, team.bob, None)

        await bob.send({"type": "sync", "since": 0})

        output = await bob.output()
        assert (output["type"], output.get("code")) == ("websocket.close", 4403)

    async def test_sync_after_role_changed_quietly_closes_4409(self, team, sockets):
        bob = await sockets.open(team.cookie["bob"], team.workbook_id)
        await set_role_quietly(team.workbook_id, team.bob, "viewer")

        await bob.send({"type": "sync", "since": 0})

        assert await bob.close_code() == 4409

    async def test_hub_check_closes_sockets_whose_role_went_or_changed_quietly(self, team, sockets):
        bob = await sockets.open(team.cookie["bob"], team.workbook_id)
        cy = await sockets.open(team.cookie["cy"], team.workbook_id)
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)
        await set_role_quietly(team.workbook_id, team.bob, None)
        await set_role_quietly(team.workbook_id, team.cy, "editor")

        await fanout.hub().check()

        assert [await bob.close_code(), await cy.close_code()] == [4403, 4409]
        await ada.send(set_one("ada-stays", "x"))
        assert (await ada.change())["op"] == "ada-stays"


class FanoutHubTest:
    async def test_started_by_sockets_at_once_one_channel_read_and_joined(self, team, sockets):
        hub = fanout.hub()
        made, new_channel = [], hub.layer.new_channel

        async def counted(*args):
            made.append(await new_channel(*args))
            return made[-1]

        hub.layer.new_channel = counted
        try:
            await asyncio.gather(hub.start(), hub.start(), hub.start())
        finally:
            del hub.layer.new_channel
        ada = await sockets.open(team.cookie["ada"], team.workbook_id)
        edit = SetCells("svc", (CellWrite(2, 2, "x"),))
        await database_sync_to_async(services.apply_operation)(workbook_id=team.workbook_id, user=team.bob, operation=edit)

        assert made == [hub.channel]
        assert (await ada.change())["op"] == "svc"
