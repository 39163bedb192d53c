"""Real processes: gunicorn and two daphne processes on one SQLite file and one Redis. What one process
commits reaches sockets held by the others, through the database and the Redis channel layer only."""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.parse
import urllib.request

import pytest
import websockets
from websockets.asyncio.client import connect

from tests import support
from tests.integration.clients import WorkbookSocket
from tests.integration.conftest import MAX_MESSAGE_BYTES, PASSWORD, SEND_BACKLOG_BYTES
from workbooks.domain.grid import Grid

pytestmark = pytest.mark.processes


def set_one(op_id: str, row: int, col: int, value) -> dict:
    return {"type": "set", "op": op_id, "cells": [{"row": row, "col": col, "value": value}]}


async def request(session, method: str, path: str, body=None) -> tuple[int, dict]:
    return await asyncio.to_thread(session.request, method, path, body)


class DaphneHandshakeTest:
    @pytest.mark.parametrize(
        "who, origin",
        [
            pytest.param(None, "own", id="anonymous"),
            pytest.param("bob", "http://evil.example", id="foreign-origin"),
            pytest.param("bob", None, id="no-origin"),
        ],
    )
    async def test_handshake_refused_with_403(self, deployment, shared_workbook, who, origin):
        headers = {"Cookie": deployment.session(who).cookie_header()} if who else {}
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            await connect(
                deployment.ws_url(0, f"/ws/workbooks/{shared_workbook['id']}/"),
                additional_headers=headers,
                origin=deployment.origin(0) if origin == "own" else origin,
                open_timeout=20,
            )
        assert refused.value.response.status_code == 403

    async def test_message_over_size_limit_closes_that_socket_4413_only(self, deployment, shared_workbook):
        workbook_id = shared_workbook["id"]
        ada = await WorkbookSocket.open(deployment, deployment.session("ada"), workbook_id, daphne=0)
        bob = await WorkbookSocket.open(deployment, deployment.session("bob"), workbook_id, daphne=0)

        await ada.send(set_one("huge", 1, 1, "x" * MAX_MESSAGE_BYTES))

        assert await ada.close_code() == 4413
        await bob.send(set_one("small", 1, 1, "x"))
        assert [(c["rev"], c["op"]) for c in [await bob.change()]] == [(1, "small")]
        await bob.close()


class GunicornAndDaphneTest:
    async def test_op_posted_to_gunicorn_reaches_socket_on_daphne(self, deployment, shared_workbook):
        workbook_id = shared_workbook["id"]
        ada = await WorkbookSocket.open(deployment, deployment.session("ada"), workbook_id, daphne=0)

        status, change = await request(
            deployment.session("bob"), "POST", f"/api/workbooks/{workbook_id}/ops", set_one("http-1", 3, 2, "from gunicorn")
        )

        assert status == 201, change
        assert await ada.change() == change
        assert (change["rev"], change["by"]["name"], change["cells"]) == (1, "bob", [{"row": 3, "col": 2, "value": "from gunicorn"}])
        await ada.close()

    async def test_socket_edit_on_daphne_visible_in_gunicorn_snapshot(self, deployment, shared_workbook):
        workbook_id = shared_workbook["id"]
        bob = await WorkbookSocket.open(deployment, deployment.session("bob"), workbook_id, daphne=1)

        await bob.send({"type": "insert_cols", "op": "ws-1", "before": 1, "count": 1})
        await bob.send(set_one("ws-2", 1, 7, "from daphne"))
        changes = [await bob.change(), await bob.change()]

        status, snapshot = await request(deployment.session("cy"), "GET", f"/api/workbooks/{workbook_id}/")
        assert status == 200
        assert snapshot["rev"] == 2
        assert [c["id"] for c in snapshot["sheets"][0]["columns"]][:2] == [7, 1]
        assert snapshot["sheets"][0]["rows"][0]["values"][0] == "from daphne"
        model = Grid.from_snapshot(shared_workbook)
        for change in changes:
            model.apply(change)
        assert model.matches(snapshot)
        await bob.close()

    async def test_rename_over_http_reaches_sockets_on_both_daphnes(self, deployment, shared_workbook):
        workbook_id = shared_workbook["id"]
        sockets = [await WorkbookSocket.open(deployment, deployment.session(name), workbook_id, daphne=i) for i, name in enumerate(("ada", "cy"))]

        status, change = await request(deployment.session("bob"), "PATCH", f"/api/workbooks/{workbook_id}/", {"name": "Renamed"})

        assert status == 200, change
        assert (change["kind"], change["name"], change["rev"]) == ("rename", "Renamed", 1)
        assert [await s.change() for s in sockets] == [change, change]
        for s in sockets:
            await s.close()

    async def test_idle_socket_outlives_redis_blocking_read_and_still_receives(self, deployment, shared_workbook):
        # The Redis layer waits for messages in blocking reads of 5 s; a socket idle for longer must
        # neither be dropped nor miss what comes next.
        workbook_id = shared_workbook["id"]
        ada = await WorkbookSocket.open(deployment, deployment.session("ada"), workbook_id, daphne=0)
        await asyncio.sleep(7)

        status, change = await request(deployment.session("bob"), "POST", f"/api/workbooks/{workbook_id}/ops", set_one("after-idle", 1, 1, "x"))

        assert status == 201, change
        assert await ada.change() == change
        await ada.close()


class SlowClientTest:
    async def test_client_not_reading_told_to_reload_then_sync_converges_others_unaffected(self, deployment, shared_workbook):
        workbook_id = shared_workbook["id"]
        ada = deployment.session("ada")
        reader = await WorkbookSocket.open(deployment, ada, workbook_id, daphne=0)
        # bob's client stops reading: the library stops reading from the socket once one message waits
        # unread, and a fixed receive buffer keeps the kernel from buffering megabytes for it.
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        raw.connect(("127.0.0.1", deployment.daphnes[0].port))
        raw.setblocking(False)
        ws = await connect(
            deployment.ws_url(0, f"/ws/workbooks/{workbook_id}/"),
            sock=raw,
            additional_headers={"Cookie": deployment.session("bob").cookie_header()},
            origin=deployment.origin(0),
            max_queue=1,
            max_size=None,
            ping_interval=None,  # its pings would wait behind everything unread
            open_timeout=20,
        )
        cells = [{"row": r["id"], "col": c["id"]} for r in shared_workbook["sheets"][0]["rows"][:2] for c in shared_workbook["sheets"][0]["columns"]]
        value_chars = (MAX_MESSAGE_BYTES - 2048) // len(cells)
        posts = 10 * 1024 * 1024 // (value_chars * len(cells))  # far past the socket buffers and the backlog limit
        assert posts * value_chars * len(cells) > 20 * SEND_BACKLOG_BYTES

        seen = []

        async def follow():
            while len(seen) < posts:
                seen.append((await reader.change())["rev"])

        following = asyncio.create_task(follow())
        for n in range(posts):
            body = {"type": "set", "op": f"big-{n}", "cells": [{**cell, "value": f"{n}".ljust(value_chars, "x")} for cell in cells]}
            status, change = await request(ada, "POST", f"/api/workbooks/{workbook_id}/ops", body)
            assert status == 201, change
        await asyncio.wait_for(following, 60)
        assert seen == list(range(1, posts + 1))  # the reading client missed nothing

        # bob reads again: changes in order, then reload, and nothing more until it syncs.
        model = Grid.from_snapshot(shared_workbook)
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), 20))
            if message["type"] == "reload":
                break
            if message["type"] == "change":
                model.apply(message)
        assert model.rev < posts
        status, last = await request(ada, "POST", f"/api/workbooks/{workbook_id}/ops", set_one("after-reload", 1, 1, "last"))
        assert status == 201, last
        status, snapshot = await request(deployment.session("bob"), "GET", f"/api/workbooks/{workbook_id}/")
        assert status == 200
        model = Grid.from_snapshot(snapshot)
        await ws.send(json.dumps({"type": "sync", "since": model.rev}))
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), 20))
            if message["type"] == "synced":
                break
            if message["type"] == "change":
                model.apply(message)  # raises unless each follows the last
        assert message["rev"] == model.rev == last["rev"] == posts + 1

        status, final = await request(ada, "GET", f"/api/workbooks/{workbook_id}/")
        assert model.matches(final)
        assert (await reader.change())["op"] == "after-reload"
        await ws.close()
        await reader.close()


class TwoDaphneProcessesTest:
    async def test_sockets_on_two_daphnes_see_each_others_edits_in_rev_order(self, deployment, shared_workbook):
        workbook_id = shared_workbook["id"]
        ada = await WorkbookSocket.open(deployment, deployment.session("ada"), workbook_id, daphne=0)
        bob = await WorkbookSocket.open(deployment, deployment.session("bob"), workbook_id, daphne=1)
        per_socket = 25

        for i in range(per_socket):
            await ada.send(set_one(f"ada-{i}", 1 + i % 20, 1, f"a{i}"))
            await bob.send(set_one(f"bob-{i}", 1 + i % 20, 2, f"b{i}"))
        seen = {name: [await s.change() for _ in range(2 * per_socket)] for name, s in (("ada", ada), ("bob", bob))}

        assert [c["rev"] for c in seen["ada"]] == list(range(1, 2 * per_socket + 1))
        assert seen["ada"] == seen["bob"]
        ops = [c["op"] for c in seen["ada"]]
        assert [o for o in ops if o.startswith("ada-")] == [f"ada-{i}" for i in range(per_socket)]
        assert [o for o in ops if o.startswith("bob-")] == [f"bob-{i}" for i in range(per_socket)]
        status, log = await request(deployment.session("cy"), "GET", f"/api/workbooks/{workbook_id}/changes?since=0")
        assert status == 200
        assert log == {"rev": 2 * per_socket, "changes": seen["ada"]}
        for s in (ada, bob):
            await s.close()


class MembershipOverHttpTest:
    async def test_member_deleted_over_http_closes_their_socket_on_daphne_4403(self, deployment, shared_workbook):
        workbook_id = shared_workbook["id"]
        ada = await WorkbookSocket.open(deployment, deployment.session("ada"), workbook_id, daphne=0)
        bob = await WorkbookSocket.open(deployment, deployment.session("bob"), workbook_id, daphne=1)
        cy = await WorkbookSocket.open(deployment, deployment.session("cy"), workbook_id, daphne=0)

        status, body = await request(deployment.session("ada"), "DELETE", f"/api/workbooks/{workbook_id}/members/bob")

        assert status == 200, body
        assert await bob.close_code() == 4403
        await ada.send(set_one("still-open", 1, 1, "x"))
        assert [(c["rev"], c["op"]) for c in (await ada.change(), await cy.change())] == [(1, "still-open")] * 2
        for s in (ada, cy):
            await s.close()

    async def test_role_changed_over_http_closes_their_socket_on_daphne_4409(self, deployment, shared_workbook):
        workbook_id = shared_workbook["id"]
        bob = await WorkbookSocket.open(deployment, deployment.session("bob"), workbook_id, daphne=1)

        status, body = await request(deployment.session("ada"), "PUT", f"/api/workbooks/{workbook_id}/members/bob", {"role": "viewer"})

        assert status == 200, body
        assert await bob.close_code() == 4409
        again = await WorkbookSocket.open(deployment, deployment.session("bob"), workbook_id, daphne=1)
        assert again.hello["role"] == "viewer"
        await again.close()

    async def test_workbook_deleted_over_http_closes_sockets_on_both_daphnes_4404(self, deployment, shared_workbook):
        workbook_id = shared_workbook["id"]
        sockets = [await WorkbookSocket.open(deployment, deployment.session(name), workbook_id, daphne=i) for i, name in enumerate(("ada", "bob"))]

        status, body = await request(deployment.session("ada"), "DELETE", f"/api/workbooks/{workbook_id}/")

        assert status == 200, body
        assert [await s.close_code() for s in sockets] == [4404, 4404]


def post_form(session: support.HttpSession, path: str, fields: dict) -> int:
    """Posts a form as the browser would (its CSRF token from the cookie); the status after redirects."""
    data = urllib.parse.urlencode({**fields, "csrfmiddlewaretoken": session.cookie("csrftoken")}).encode()
    request = urllib.request.Request(session.base_url + path, data=data, headers={"Referer": session.base_url + path})
    with session.opener.open(request, timeout=30) as response:
        return response.status


class LoginEndedAcrossProcessesTest:
    """A login that ends on gunicorn closes the sockets it opened on every daphne process (4401), and
    only those: the same user's other session keeps its sockets."""

    @pytest.fixture
    def dan(self, deployment, shared_workbook, request):
        """A user of this test's own (its password may change), an editor of the shared workbook."""
        username = f"dan-{request.node.name[-40:]}".replace("[", "-").replace("]", "")
        support.create_user(deployment.env, username, PASSWORD)
        status, body = deployment.session("ada").request("PUT", f"/api/workbooks/{shared_workbook['id']}/members/{username}", {"role": "editor"})
        assert status == 201, body
        return username

    async def test_logout_on_gunicorn_closes_that_sessions_sockets_on_both_daphnes_4401(self, deployment, shared_workbook, dan):
        workbook_id = shared_workbook["id"]
        laptop, phone = deployment.session(dan), deployment.session(dan)
        on_laptop = [await WorkbookSocket.open(deployment, laptop, workbook_id, daphne=i) for i in (0, 1)]
        on_phone = [await WorkbookSocket.open(deployment, phone, workbook_id, daphne=i) for i in (0, 1)]

        assert await asyncio.to_thread(post_form, laptop, "/accounts/logout/", {}) == 200

        assert [await s.close_code() for s in on_laptop] == [4401, 4401]
        await on_phone[0].send(set_one("from-phone", 1, 1, "x"))
        assert [(await s.change())["op"] for s in on_phone] == ["from-phone", "from-phone"]
        for s in on_phone:
            await s.close()

    async def test_password_changed_on_gunicorn_closes_other_sessions_sockets_4401(self, deployment, shared_workbook, dan):
        workbook_id = shared_workbook["id"]
        here, elsewhere = deployment.session(dan), deployment.session(dan)
        on_elsewhere = [await WorkbookSocket.open(deployment, elsewhere, workbook_id, daphne=i) for i in (0, 1)]
        new_password = "changed-on-gunicorn-2"
        form = {"old_password": PASSWORD, "new_password1": new_password, "new_password2": new_password}

        assert await asyncio.to_thread(post_form, here, "/accounts/password_change/", form) == 200

        assert [await s.close_code() for s in on_elsewhere] == [4401, 4401]
        again = await WorkbookSocket.open(deployment, here, workbook_id, daphne=1)  # kept logged in, under a new key
        await again.send(set_one("after-change", 2, 2, "y"))
        assert (await again.change())["op"] == "after-change"
        await again.close()
