"""The production shape serves Tabula through nginx: pages, static files, the API and the sockets."""

import asyncio
import contextlib
import json
import urllib.request

import pytest
from websockets.asyncio.client import connect

from stack.local import LocalStack

pytestmark = pytest.mark.processes


def open_socket(stack, session, workbook_id):
    url = f"{stack.ws_url}/ws/workbooks/{workbook_id}/"
    return connect(url, additional_headers={"Cookie": session.cookie_header()}, origin=stack.url, ssl=stack.ssl_context())


async def next_of(ws, kind):
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
        if message["type"] == kind:
            return message


class ThroughNginxTest:
    def test_login_page_https_hsts_and_secure_cookies(self, stack):
        session = stack.session("carol", "carol-password-1")
        with session.opener.open(f"{stack.url}/", timeout=30) as response:
            assert response.status == 200
            assert response.headers["Strict-Transport-Security"].startswith("max-age=")
        assert {c.name: c.secure for c in session.jar} == {"csrftoken": True, "sessionid": True}

    def test_plain_http_port_redirects_to_https(self, stack):
        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args):
                return None

        opener = urllib.request.build_opener(NoRedirect)
        with pytest.raises(urllib.error.HTTPError) as caught:
            opener.open(f"http://127.0.0.1:{stack.http_port}/accounts/login/", timeout=10)
        assert caught.value.code == 301
        assert caught.value.headers["Location"] == "https://127.0.0.1/accounts/login/"

    def test_static_file_served_by_nginx_from_collected_files(self, stack):
        with urllib.request.urlopen(f"{stack.url}/static/admin/css/base.css", context=stack.ssl_context(), timeout=10) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/css"
            assert "Expires" in response.headers  # set by nginx, not by Django

    def test_api_create_then_read_snapshot(self, stack, workbook):
        workbook_id, alice, _ = workbook
        status, snapshot = alice.request("GET", f"/api/workbooks/{workbook_id}/")
        assert status == 200
        assert (snapshot["rev"], len(snapshot["sheets"][0]["rows"]), len(snapshot["sheets"][0]["columns"])) == (0, 20, 5)

    def test_api_body_over_limit_json_413_from_django(self, stack, workbook):
        workbook_id, alice, _ = workbook
        big = [{"row": 1, "col": 1, "value": "x" * 9_000}] * 130  # about 1.2 MB: over the 1 MiB limit
        status, body = alice.request("POST", f"/api/workbooks/{workbook_id}/ops", {"type": "set", "op": "big", "cells": big})
        assert status == 413
        assert body["error"]

    async def test_two_sockets_on_different_daphne_processes_see_each_others_edits(self, stack, workbook):
        workbook_id, alice, bob = workbook
        async with open_socket(stack, alice, workbook_id) as ws_a, open_socket(stack, bob, workbook_id) as ws_b:
            upstreams = {ws_a.response.headers["X-Tabula-Upstream"], ws_b.response.headers["X-Tabula-Upstream"]}
            assert upstreams == {f"127.0.0.1:{port}" for port in stack.daphne_ports}
            await next_of(ws_a, "hello")
            await next_of(ws_b, "hello")
            await ws_a.send(json.dumps({"type": "set", "op": "a1", "cells": [{"row": 1, "col": 1, "value": "from alice"}]}))
            seen_by_bob = await next_of(ws_b, "change")
            await ws_b.send(json.dumps({"type": "set", "op": "b1", "cells": [{"row": 2, "col": 2, "value": "from bob"}]}))
            seen_by_alice = [await next_of(ws_a, "change"), await next_of(ws_a, "change")]
        assert (seen_by_bob["op"], seen_by_bob["cells"]) == ("a1", [{"row": 1, "col": 1, "value": "from alice"}])
        assert [(c["op"], c["rev"]) for c in seen_by_alice] == [("a1", 1), ("b1", 2)]

    def test_http_edit_in_gunicorn_reaches_sockets_in_daphne(self, stack, workbook):
        workbook_id, alice, bob = workbook

        async def scenario():
            async with open_socket(stack, bob, workbook_id) as ws:
                await next_of(ws, "hello")
                op = {"type": "set", "op": "http-1", "cells": [{"row": 3, "col": 3, "value": 42}]}
                status, change = await asyncio.to_thread(alice.request, "POST", f"/api/workbooks/{workbook_id}/ops", op)
                assert status in (200, 201), change
                return await next_of(ws, "change")

        seen = asyncio.run(scenario())
        assert (seen["op"], seen["rev"], seen["cells"]) == ("http-1", 1, [{"row": 3, "col": 3, "value": 42}])


class ShippedRoutingTest:
    """The nginx site as shipped (the other tests here spread one workbook over both daphne processes)."""

    async def test_a_workbooks_sockets_share_a_daphne_process_and_workbooks_spread(self, tmp_path):
        with LocalStack(tmp_path / "stack") as shipped:
            alice = shipped.session("alice", "alice-password-1")
            workbook_ids = []
            for n in range(16):
                status, created = alice.request("POST", "/api/workbooks/", {"name": f"routing {n}", "rows": 2, "cols": 2})
                assert status == 201, created
                workbook_ids.append(created["id"])

            async def upstreams_of(workbook_id, count):
                async with contextlib.AsyncExitStack() as sockets:
                    opened = [await sockets.enter_async_context(open_socket(shipped, alice, workbook_id)) for _ in range(count)]
                    for ws in opened:
                        await next_of(ws, "hello")
                    return [ws.response.headers["X-Tabula-Upstream"] for ws in opened]

            daphnes = {f"127.0.0.1:{port}" for port in shipped.daphne_ports}
            first = await upstreams_of(workbook_ids[0], 4)
            assert len(set(first)) == 1 and set(first) <= daphnes
            # 16 workbooks on one of two processes by chance: 1 in 32,768.
            assert {(await upstreams_of(workbook_id, 1))[0] for workbook_id in workbook_ids} == daphnes
