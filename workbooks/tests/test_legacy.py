"""A page of Tabula v1 left open across the upgrade: its socket says reload, its API path says why,
its page address leads to the workbook."""

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from proj.asgi import application
from workbooks import legacy

pytestmark = pytest.mark.django_db(transaction=True)


def logged_in(username: str) -> Client:
    client = Client()
    client.force_login(get_user_model().objects.create_user(username))
    return client


class UpgradedPathsTest:
    def test_v1_page_address_redirects_to_the_workbook(self):
        response = logged_in("ada").get("/sheets/7/")
        assert response.status_code == 301 and response["Location"] == "/workbooks/7/"

    def test_v1_api_path_404_asks_for_a_reload(self):
        response = logged_in("ada").get("/api/sheets/7/")
        assert response.status_code == 404
        assert response.json() == {"error": "not_found", "message": legacy.UPGRADED}


class UpgradedConsumerTest:
    async def test_v1_socket_logged_in_told_to_reload(self):
        client = Client()
        user = await get_user_model().objects.acreate(username="ada")
        await client.aforce_login(user)
        cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
        socket = WebsocketCommunicator(application, "/ws/sheets/7/", headers=[(b"origin", b"http://127.0.0.1"), (b"cookie", cookie)])
        connected, _ = await socket.connect()
        assert connected
        assert await socket.receive_json_from(timeout=5) == {"type": "reload"}
        await socket.send_json_to({"type": "set", "op": "o1", "cells": [{"row": 1, "col": 1, "value": "x"}]})
        assert await socket.receive_nothing(timeout=0.2)
        await socket.disconnect()

    async def test_v1_socket_logged_out_refused(self):
        socket = WebsocketCommunicator(application, "/ws/sheets/7/", headers=[(b"origin", b"http://127.0.0.1")])
        connected, _ = await socket.connect()
        assert not connected
