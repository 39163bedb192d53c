"""The HTTP API as a black box, through Django's test client: every endpoint of the contract's table."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import pytest
from asgiref.sync import async_to_sync
from channels.layers import channel_layers, get_channel_layer
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.http import HttpResponse
from django.test import Client
from model_bakery import baker

from tests import support
from workbooks import broadcast, services
from workbooks.domain.values import CellWrite, SetCells
from workbooks.models import Change, Member, Sheet, Workbook
from workbooks.services import lifecycle

pytestmark = pytest.mark.django_db

SUMMARY_KEYS = {"id", "name", "rev", "role", "updated_at"}
SNAPSHOT_KEYS = {"id", "name", "rev", "floor", "role", "sheets"}
CHANGE_KEYS = {"type", "rev", "op", "by", "at", "kind", "computed"}


@pytest.fixture(autouse=True)
def fresh_rate_budget():
    """The HTTP rate limit counts in the cache; every test starts with an unused budget."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def team():
    """ada owns a workbook (rows 1-3, columns 1-2) shared with bob (editor) and cy (viewer); dee has no role."""
    users = {name: baker.make(get_user_model(), username=name) for name in ("ada", "bob", "cy", "dee")}
    workbook_id = services.create_workbook(user=users["ada"], name="Budget", rows=3, cols=2).id
    baker.make(Member, workbook_id=workbook_id, user=users["bob"], role="editor")
    baker.make(Member, workbook_id=workbook_id, user=users["cy"], role="viewer")
    return SimpleNamespace(workbook_id=workbook_id, **users)


def client_for(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def call(client, method, path, body=None, **extra):
    """The response, read whole (as a WSGI server reads a streamed one, closing it at the end)."""
    data = "" if body is None else (body if isinstance(body, str | bytes) else json.dumps(body))
    response = client.generic(method, path, data, content_type="application/json", **extra)
    if response.streaming:
        whole = HttpResponse(b"".join(response.streaming_content), status=response.status_code, headers=dict(response.headers))
        whole.json = lambda: json.loads(whole.content)
        return whole
    return response


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error", "message"}
    assert body["error"] == code
    assert body["message"]


def set_op(op, *cells):
    return {"type": "set", "op": op, "cells": [{"row": r, "col": c, "value": v} for r, c, v in cells]}


def workbook_state(workbook_id):
    """Everything that must not change when a request is refused."""
    workbook = Workbook.objects.filter(pk=workbook_id).values("name", "rev").first()
    sheets = sorted(Sheet.objects.filter(workbook_id=workbook_id).values_list("sid", "name", "position", "row_count", "col_count", "deleted_rev"))
    members = sorted(Member.objects.filter(workbook_id=workbook_id).values_list("user__username", "role"))
    return workbook, sheets, members, Change.objects.filter(workbook_id=workbook_id).count()


def every_endpoint(workbook_id):
    return [
        ("GET", "/api/workbooks/", None),
        ("POST", "/api/workbooks/", {"name": "New"}),
        ("GET", f"/api/workbooks/{workbook_id}/", None),
        ("PATCH", f"/api/workbooks/{workbook_id}/", {"name": "Taken"}),
        ("DELETE", f"/api/workbooks/{workbook_id}/", None),
        ("GET", f"/api/workbooks/{workbook_id}/members", None),
        ("PUT", f"/api/workbooks/{workbook_id}/members/dee", {"role": "editor"}),
        ("DELETE", f"/api/workbooks/{workbook_id}/members/bob", None),
        ("GET", f"/api/workbooks/{workbook_id}/changes?since=0", None),
        ("POST", f"/api/workbooks/{workbook_id}/ops", set_op("o", (1, 1, "x"))),
    ]


WORKBOOK_ENDPOINTS = [
    ("GET", "/api/workbooks/{id}/", None),
    ("PATCH", "/api/workbooks/{id}/", {"name": "Taken"}),
    ("DELETE", "/api/workbooks/{id}/", None),
    ("GET", "/api/workbooks/{id}/members", None),
    ("PUT", "/api/workbooks/{id}/members/dee", {"role": "editor"}),
    ("PUT", "/api/workbooks/{id}/members/bob", {"role": "viewer"}),
    ("DELETE", "/api/workbooks/{id}/members/bob", None),
    ("GET", "/api/workbooks/{id}/changes?since=0", None),
    ("POST", "/api/workbooks/{id}/ops", set_op("o", (1, 1, "x"))),
]


class AuthenticationTest:
    def test_every_endpoint_anonymous_401_json_nothing_changes(self, team):
        before = workbook_state(team.workbook_id)
        for method, path, body in every_endpoint(team.workbook_id):
            assert_error(call(Client(), method, path, body), 401, "unauthenticated")
        assert workbook_state(team.workbook_id) == before
        assert Workbook.objects.count() == 1


class NoRoleTest:
    @pytest.mark.parametrize(("method", "path", "body"), WORKBOOK_ENDPOINTS)
    def test_workbook_endpoint_user_without_role_404_nothing_changes(self, team, method, path, body):
        before = workbook_state(team.workbook_id)
        response = call(client_for(team.dee), method, path.format(id=team.workbook_id), body)
        assert_error(response, 404, "not_found")
        assert workbook_state(team.workbook_id) == before

    @pytest.mark.parametrize(("method", "path", "body"), WORKBOOK_ENDPOINTS)
    def test_workbook_endpoint_no_role_same_answer_as_missing_workbook(self, team, method, path, body):
        client = client_for(team.dee)
        existing = call(client, method, path.format(id=team.workbook_id), body)
        missing = call(client, method, path.format(id=team.workbook_id + 1000), body)
        assert (existing.status_code, existing.json()) == (missing.status_code, missing.json())

    def test_list_user_without_role_workbook_not_listed(self, team):
        assert call(client_for(team.dee), "GET", "/api/workbooks/").json() == {"workbooks": []}


class ViewerTest:
    @pytest.mark.parametrize(
        ("method", "path"),
        [("GET", "/api/workbooks/{id}/"), ("GET", "/api/workbooks/{id}/members"), ("GET", "/api/workbooks/{id}/changes?since=0")],
    )
    def test_viewer_reads_200(self, team, method, path):
        assert call(client_for(team.cy), method, path.format(id=team.workbook_id)).status_code == 200

    @pytest.mark.parametrize(
        ("method", "path", "body"),
        [
            ("POST", "/api/workbooks/{id}/ops", set_op("o", (1, 1, "x"))),
            ("PATCH", "/api/workbooks/{id}/", {"name": "Mine now"}),
            ("DELETE", "/api/workbooks/{id}/", None),
            ("PUT", "/api/workbooks/{id}/members/dee", {"role": "viewer"}),
            ("DELETE", "/api/workbooks/{id}/members/bob", None),
        ],
    )
    def test_viewer_changes_403_nothing_changes(self, team, method, path, body):
        before = workbook_state(team.workbook_id)
        assert_error(call(client_for(team.cy), method, path.format(id=team.workbook_id), body), 403, "forbidden")
        assert workbook_state(team.workbook_id) == before


class WorkbooksTest:
    def test_get_workbooks_my_workbooks_with_role(self, team):
        other = services.create_workbook(user=team.cy, name="Cy's own", rows=1, cols=1).id
        response = call(client_for(team.cy), "GET", "/api/workbooks/")
        assert response.status_code == 200
        workbooks = response.json()["workbooks"]
        assert all(set(s) == SUMMARY_KEYS for s in workbooks)
        assert sorted((s["id"], s["name"], s["rev"], s["role"]) for s in workbooks) == sorted(
            [(team.workbook_id, "Budget", 0, "viewer"), (other, "Cy's own", 0, "owner")]
        )
        assert all(s["updated_at"].endswith("Z") for s in workbooks)

    def test_post_workbooks_default_size_201_snapshot_owned(self, team):
        response = call(client_for(team.dee), "POST", "/api/workbooks/", {"name": "Fresh"})
        assert response.status_code == 201
        snap = response.json()
        assert set(snap) == SNAPSHOT_KEYS
        assert (snap["name"], snap["rev"], snap["role"]) == ("Fresh", 0, "owner")
        assert len(snap["sheets"][0]["rows"]) == 100 and len(snap["sheets"][0]["columns"]) == 26
        assert snap["sheets"][0]["columns"][0] == {"id": snap["sheets"][0]["columns"][0]["id"], "title": "A"}
        assert snap["sheets"][0]["rows"][0]["values"] == [None] * 26
        assert call(client_for(team.dee), "GET", f"/api/workbooks/{snap['id']}/").json() == snap

    def test_post_workbooks_rows_and_cols_given(self, team):
        snap = call(client_for(team.dee), "POST", "/api/workbooks/", {"name": "Small", "rows": 2, "cols": 3}).json()
        assert [len(r["values"]) for r in snap["sheets"][0]["rows"]] == [3, 3]

    @pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": 5}, {"name": "x", "rows": -1}, {"name": "x", "cols": "2"}])
    def test_post_workbooks_bad_body_400(self, team, body):
        assert_error(call(client_for(team.dee), "POST", "/api/workbooks/", body), 400, "invalid")
        assert not Member.objects.filter(user=team.dee).exists()

    def test_post_workbooks_more_rows_than_limit_413(self, team, settings):
        settings.TABULA_LIMITS = {**settings.TABULA_LIMITS, "max_rows": 10}
        assert_error(call(client_for(team.dee), "POST", "/api/workbooks/", {"name": "Big", "rows": 11}), 413, "too_large")

    def test_post_workbooks_more_cells_than_limit_413_nothing_created(self, team):
        response = call(client_for(team.dee), "POST", "/api/workbooks/", {"name": "Huge", "rows": 100_000, "cols": 1_000})
        assert_error(response, 413, "too_large")
        assert "10,000,000 cells" in response.json()["message"]
        assert not Member.objects.filter(user=team.dee).exists()

    def test_post_workbooks_big_answered_without_rows_rows_from_get(self, team, monkeypatch):
        monkeypatch.setattr(lifecycle, "SNAPSHOT_ON_CREATE_CELLS", 5)
        response = call(client_for(team.dee), "POST", "/api/workbooks/", {"name": "Wide", "rows": 3, "cols": 2})
        assert response.status_code == 201
        head = response.json()
        assert set(head) == SNAPSHOT_KEYS and "rows" not in head["sheets"][0]
        assert [c["title"] for c in head["sheets"][0]["columns"]] == ["A", "B"]
        snap = call(client_for(team.dee), "GET", response["Location"]).json()
        rows = [{"id": r["id"], "values": [None, None]} for r in snap["sheets"][0]["rows"]]
        assert snap == {**head, "sheets": [{**head["sheets"][0], "rows": rows, "formulas": []}]}
        assert len(snap["sheets"][0]["rows"]) == 3

    def test_post_workbooks_past_own_quota_413(self, team, settings):
        settings.TABULA_LIMITS = {**settings.TABULA_LIMITS, "max_workbooks_per_user": 2}
        client = client_for(team.dee)
        assert [call(client, "POST", "/api/workbooks/", {"name": f"S{i}"}).status_code for i in range(2)] == [201, 201]
        assert_error(call(client, "POST", "/api/workbooks/", {"name": "S2"}), 413, "too_large")
        assert Member.objects.filter(user=team.dee).count() == 2

    def test_post_workbooks_past_hourly_creations_429(self, team, settings):
        settings.TABULA_LIMITS = {**settings.TABULA_LIMITS, "creates_per_hour": 2}
        client = client_for(team.dee)
        assert [call(client, "POST", "/api/workbooks/", {"name": f"S{i}"}).status_code for i in range(2)] == [201, 201]
        Workbook.objects.filter(members__user=team.dee).delete()  # deleting them gives no new budget
        assert_error(call(client, "POST", "/api/workbooks/", {"name": "S2"}), 429, "rate_limited")
        assert call(client_for(team.cy), "POST", "/api/workbooks/", {"name": "Cy's"}).status_code == 201  # a budget per user


class WorkbookTest:
    def test_get_workbook_snapshot_values_by_column(self, team):
        operation = SetCells("s", (CellWrite(2, 2, "b"), CellWrite(1, 1, 1.5)))
        services.apply_operation(workbook_id=team.workbook_id, user=team.ada, operation=operation)
        response = call(client_for(team.bob), "GET", f"/api/workbooks/{team.workbook_id}/")
        assert response.status_code == 200
        assert response.json() == {
            "id": team.workbook_id,
            "name": "Budget",
            "rev": 1,
            "floor": 0,
            "role": "editor",
            "sheets": [
                {
                    "id": 1,
                    "name": "Sheet1",
                    "columns": [{"id": 1, "title": "A"}, {"id": 2, "title": "B"}],
                    "rows": [{"id": 1, "values": [1.5, None]}, {"id": 2, "values": [None, "b"]}, {"id": 3, "values": [None, None]}],
                    "formulas": [],
                }
            ],
        }

    @pytest.mark.parametrize("user", ["ada", "bob"])
    def test_patch_workbook_owner_or_editor_renames_returns_change(self, team, user):
        response = call(client_for(getattr(team, user)), "PATCH", f"/api/workbooks/{team.workbook_id}/", {"name": " Plan "})
        assert response.status_code == 200
        change = response.json()
        assert set(change) == CHANGE_KEYS | {"name"}
        assert (change["type"], change["kind"], change["name"], change["rev"], change["by"]["name"]) == ("change", "rename", "Plan", 1, user)
        assert call(client_for(team.cy), "GET", f"/api/workbooks/{team.workbook_id}/").json()["name"] == "Plan"

    @pytest.mark.parametrize(
        ("body", "status", "code"), [({"name": ""}, 400, "invalid"), ({}, 400, "invalid"), ({"name": "n" * 201}, 413, "too_large")]
    )
    def test_patch_workbook_bad_name_refused(self, team, body, status, code):
        assert_error(call(client_for(team.ada), "PATCH", f"/api/workbooks/{team.workbook_id}/", body), status, code)
        assert workbook_state(team.workbook_id)[0]["name"] == "Budget"

    def test_delete_workbook_owner_200_then_gone(self, team):
        client = client_for(team.ada)
        response = call(client, "DELETE", f"/api/workbooks/{team.workbook_id}/")
        assert (response.status_code, response.json()) == (200, {})
        assert_error(call(client, "GET", f"/api/workbooks/{team.workbook_id}/"), 404, "not_found")

    def test_delete_workbook_editor_403_kept(self, team):
        assert_error(call(client_for(team.bob), "DELETE", f"/api/workbooks/{team.workbook_id}/"), 403, "forbidden")
        assert Workbook.objects.filter(pk=team.workbook_id).exists()


class MembersTest:
    def test_get_members_owner_first(self, team):
        response = call(client_for(team.cy), "GET", f"/api/workbooks/{team.workbook_id}/members")
        assert response.status_code == 200
        assert response.json() == {
            "members": [{"username": "ada", "role": "owner"}, {"username": "bob", "role": "editor"}, {"username": "cy", "role": "viewer"}]
        }

    def test_put_member_new_201_then_change_200(self, team):
        client = client_for(team.ada)
        path = f"/api/workbooks/{team.workbook_id}/members/dee"
        created = call(client, "PUT", path, {"role": "viewer"})
        assert (created.status_code, created.json()) == (201, {"username": "dee", "role": "viewer"})
        changed = call(client, "PUT", path, {"role": "editor"})
        assert (changed.status_code, changed.json()) == (200, {"username": "dee", "role": "editor"})
        assert call(client_for(team.dee), "GET", f"/api/workbooks/{team.workbook_id}/").json()["role"] == "editor"

    @pytest.mark.parametrize("body", [{"role": "owner"}, {"role": "admin"}, {}])
    def test_put_member_role_not_editor_or_viewer_400(self, team, body):
        assert_error(call(client_for(team.ada), "PUT", f"/api/workbooks/{team.workbook_id}/members/dee", body), 400, "invalid")

    def test_put_member_owner_409(self, team):
        assert_error(call(client_for(team.ada), "PUT", f"/api/workbooks/{team.workbook_id}/members/ada", {"role": "viewer"}), 409, "conflict")

    def test_put_member_unknown_user_404(self, team):
        assert_error(call(client_for(team.ada), "PUT", f"/api/workbooks/{team.workbook_id}/members/nobody", {"role": "viewer"}), 404, "not_found")

    def test_put_member_editor_403(self, team):
        assert_error(call(client_for(team.bob), "PUT", f"/api/workbooks/{team.workbook_id}/members/dee", {"role": "viewer"}), 403, "forbidden")

    def test_delete_member_owner_removes_then_404(self, team):
        client = client_for(team.ada)
        path = f"/api/workbooks/{team.workbook_id}/members/bob"
        response = call(client, "DELETE", path)
        assert (response.status_code, response.json()) == (200, {})
        assert_error(call(client_for(team.bob), "GET", f"/api/workbooks/{team.workbook_id}/"), 404, "not_found")
        assert_error(call(client, "DELETE", path), 404, "not_found")

    def test_delete_member_owner_409(self, team):
        assert_error(call(client_for(team.ada), "DELETE", f"/api/workbooks/{team.workbook_id}/members/ada"), 409, "conflict")


class UndoOverHttpTest:
    def test_undo_and_redo_over_http_per_session(self, team):
        client, path = client_for(team.bob), f"/api/workbooks/{team.workbook_id}/ops"
        call(client, "POST", path, {**set_op("a", (1, 1, "x")), "session": "script"})
        call(client, "POST", path, set_op("b", (2, 1, "no session")))
        undone = call(client, "POST", path, {"type": "undo", "op": "u", "session": "script"})
        assert undone.status_code == 201
        assert (undone.json()["kind"], undone.json()["undo_of"]) == ("batch", 1)
        values = [r["values"][0] for r in call(client, "GET", f"/api/workbooks/{team.workbook_id}/").json()["sheets"][0]["rows"][:2]]
        assert values == [None, "no session"]
        again = call(client, "POST", path, {"type": "undo", "op": "u", "session": "script"})
        assert (again.status_code, again.json()) == (200, undone.json())
        assert call(client, "POST", path, {"type": "redo", "op": "r", "session": "script"}).json()["redo_of"] == 1
        assert_error(call(client, "POST", path, {"type": "redo", "op": "r2", "session": "script"}), 409, "conflict")

    @pytest.mark.parametrize("session", ["", 5, "x" * 65, None])
    def test_bad_session_400(self, team, session):
        body = {"type": "undo", "op": "u", "session": session}
        if session is None:
            body["group"] = []
        assert_error(call(client_for(team.bob), "POST", f"/api/workbooks/{team.workbook_id}/ops", body), 400, "invalid")

    def test_viewer_undo_403(self, team):
        assert_error(call(client_for(team.cy), "POST", f"/api/workbooks/{team.workbook_id}/ops", {"type": "undo", "op": "u"}), 403, "forbidden")


class HistoryOverHttpTest:
    def test_snapshot_at_rev_versions_and_cell_history_for_any_member(self, team):
        bob, path = client_for(team.bob), f"/api/workbooks/{team.workbook_id}"
        call(bob, "POST", f"{path}/ops", set_op("a", (1, 1, "first")))
        then = call(bob, "GET", f"{path}/").json()
        call(bob, "POST", f"{path}/ops", set_op("b", (1, 1, "second")))
        viewer = client_for(team.cy)
        at = call(viewer, "GET", f"{path}/?rev=1")
        assert (at.status_code, at.json()) == (200, {**then, "role": "viewer"})
        versions = call(viewer, "GET", f"{path}/versions").json()["versions"]
        assert [(v["rev"], v["first_rev"], v["by"]["name"], v["kinds"], v["count"]) for v in versions] == [(2, 1, "bob", ["set"], 2)]
        history = call(viewer, "GET", f"{path}/sheets/1/cells/1/1/history?limit=5").json()["versions"]
        assert [(v["rev"], v["by"]["name"], v["value"]) for v in history] == [(2, "bob", "second"), (1, "bob", "first")]
        assert set(history[0]) == {"rev", "at", "by", "value", "computed"}

    @pytest.mark.parametrize("query", ["?rev=", "?rev=-1", "?rev=x", "?rev=1.5", "?rev=\u00b2", "?rev=9"])
    def test_snapshot_at_bad_rev_400(self, team, query):
        assert_error(call(client_for(team.ada), "GET", f"/api/workbooks/{team.workbook_id}/{query}"), 400, "invalid")

    @pytest.mark.parametrize("path", ["versions?limit=0", "versions?limit=1001", "versions?before=x", "sheets/1/cells/1/1/history?limit=-1"])
    def test_history_bad_query_400(self, team, path):
        assert_error(call(client_for(team.ada), "GET", f"/api/workbooks/{team.workbook_id}/{path}"), 400, "invalid")

    def test_history_below_floor_410(self, team):
        client, path = client_for(team.ada), f"/api/workbooks/{team.workbook_id}"
        for i in range(3):
            call(client, "POST", f"{path}/ops", set_op(f"o{i}", (1, 1, i)))
        call_command("prune_changes", keep=1, stdout=io.StringIO())
        for query in ("/?rev=1", "/versions?before=2", "/sheets/1/cells/1/1/history?before=2"):
            assert_error(call(client, "GET", path + query), 410, "history_truncated")
        assert_error(call(client, "POST", f"{path}/ops", {"type": "restore", "op": "r", "rev": 1}), 410, "history_truncated")

    def test_history_of_unknown_cell_or_workbook_404(self, team):
        assert_error(call(client_for(team.ada), "GET", f"/api/workbooks/{team.workbook_id}/sheets/1/cells/4/1/history"), 404, "not_found")
        for path in ("/?rev=0", "/versions", "/sheets/1/cells/1/1/history"):
            assert_error(call(client_for(team.dee), "GET", f"/api/workbooks/{team.workbook_id}{path}"), 404, "not_found")

    def test_restore_by_editor_not_viewer(self, team):
        path = f"/api/workbooks/{team.workbook_id}/ops"
        call(client_for(team.bob), "POST", path, set_op("a", (1, 1, "x")))
        assert_error(call(client_for(team.cy), "POST", path, {"type": "restore", "op": "r", "rev": 0}), 403, "forbidden")
        restored = call(client_for(team.bob), "POST", path, {"type": "restore", "op": "r", "rev": 0})
        assert (restored.status_code, restored.json()["restore_of"]) == (201, 0)
        assert call(client_for(team.bob), "GET", f"/api/workbooks/{team.workbook_id}/").json()["sheets"][0]["rows"][0]["values"][0] is None


class ChangesTest:
    def test_get_changes_each_as_socket_sends_it_in_order(self, team):
        client = client_for(team.bob)
        sent = [
            call(client, "POST", f"/api/workbooks/{team.workbook_id}/ops", set_op("a", (1, 1, "x"))).json(),
            call(client, "POST", f"/api/workbooks/{team.workbook_id}/ops", {"type": "insert_rows", "op": "b", "before": 2, "count": 1}).json(),
            call(client, "PATCH", f"/api/workbooks/{team.workbook_id}/", {"name": "N", "op": "c"}).json(),
        ]
        response = call(client_for(team.cy), "GET", f"/api/workbooks/{team.workbook_id}/changes?since=0")
        assert response.status_code == 200
        assert response.json() == {"rev": 3, "changes": sent}
        assert call(client, "GET", f"/api/workbooks/{team.workbook_id}/changes?since=2").json() == {"rev": 3, "changes": sent[2:]}
        assert call(client, "GET", f"/api/workbooks/{team.workbook_id}/changes?since=3").json() == {"rev": 3, "changes": []}

    @pytest.mark.parametrize("query", ["", "?since=", "?since=-1", "?since=abc", "?since=1.5"])
    def test_get_changes_since_missing_or_not_revision_400(self, team, query):
        assert_error(call(client_for(team.ada), "GET", f"/api/workbooks/{team.workbook_id}/changes{query}"), 400, "invalid")

    def test_get_changes_pruned_history_410(self, team):
        client = client_for(team.ada)
        for i in range(3):
            call(client, "POST", f"/api/workbooks/{team.workbook_id}/ops", set_op(f"o{i}", (1, 1, i)))
        call_command("prune_changes", keep=1, stdout=io.StringIO())
        assert_error(call(client, "GET", f"/api/workbooks/{team.workbook_id}/changes?since=1"), 410, "history_truncated")
        assert [c["rev"] for c in call(client, "GET", f"/api/workbooks/{team.workbook_id}/changes?since=2").json()["changes"]] == [3]

    def test_get_changes_more_bytes_than_limit_410(self, team, settings):
        client = client_for(team.ada)
        for i in range(3):
            call(client, "POST", f"/api/workbooks/{team.workbook_id}/ops", set_op(f"o{i}", (1, 1, "x" * 1000)))
        settings.TABULA_LIMITS = {**settings.TABULA_LIMITS, "max_sync_bytes": 2500}
        assert_error(call(client, "GET", f"/api/workbooks/{team.workbook_id}/changes?since=0"), 410, "history_truncated")
        assert [c["op"] for c in call(client, "GET", f"/api/workbooks/{team.workbook_id}/changes?since=1").json()["changes"]] == ["o1", "o2"]

    def test_get_changes_more_than_count_limit_410(self, team, settings):
        client = client_for(team.ada)
        for i in range(3):
            call(client, "POST", f"/api/workbooks/{team.workbook_id}/ops", set_op(f"o{i}", (1, 1, i)))
        settings.TABULA_LIMITS = {**settings.TABULA_LIMITS, "max_sync_changes": 2}
        assert_error(call(client, "GET", f"/api/workbooks/{team.workbook_id}/changes?since=0"), 410, "history_truncated")
        assert len(call(client, "GET", f"/api/workbooks/{team.workbook_id}/changes?since=1").json()["changes"]) == 2

    def test_get_changes_since_ahead_410(self, team):
        assert_error(call(client_for(team.ada), "GET", f"/api/workbooks/{team.workbook_id}/changes?since=5"), 410, "history_truncated")


class OpsTest:
    def url(self, team):
        return f"/api/workbooks/{team.workbook_id}/ops"

    @pytest.mark.parametrize(
        ("operation", "fields"),
        [
            (set_op("s", (1, 2, "v")), {"sheet": 1, "cells": [{"row": 1, "col": 2, "value": "v"}], "overwritten": []}),
            ({"type": "insert_rows", "op": "ir", "before": None, "count": 2}, {"sheet": 1, "before": None, "rows": [4, 5]}),
            ({"type": "insert_cols", "op": "ic", "sheet": 1, "before": 1, "count": 1}, {"sheet": 1, "before": 1, "cols": [3]}),
            ({"type": "delete_rows", "op": "dr", "rows": [2]}, {"sheet": 1, "rows": [2]}),
            ({"type": "delete_cols", "op": "dc", "sheet": 1, "cols": [1]}, {"sheet": 1, "cols": [1]}),
            (
                {"type": "add_sheet", "op": "as", "name": "Q3"},
                {"sheet": 2, "name": "Q3", "before": None, "columns": list(range(3, 29)), "rows": list(range(4, 104))},
            ),
            ({"type": "rename_sheet", "op": "rs", "sheet": 1, "name": "Data"}, {"sheet": 1, "name": "Data"}),
        ],
    )
    def test_post_ops_each_kind_201_change(self, team, operation, fields):
        response = call(client_for(team.bob), "POST", self.url(team), operation)
        assert response.status_code == 201
        change = response.json()
        assert set(change) == CHANGE_KEYS | set(fields)
        assert change == {
            **change,
            "type": "change",
            "rev": 1,
            "op": operation["op"],
            "by": {"id": team.bob.pk, "name": "bob"},
            "kind": operation["type"],
            **fields,
        }

    def test_post_ops_same_op_again_200_original_change_not_applied_twice(self, team):
        client = client_for(team.ada)
        first = call(client, "POST", self.url(team), {"type": "insert_rows", "op": "once", "before": None, "count": 1})
        again = call(client, "POST", self.url(team), {"type": "insert_rows", "op": "once", "before": None, "count": 1})
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json() == first.json()
        snap = call(client, "GET", f"/api/workbooks/{team.workbook_id}/").json()
        assert (snap["rev"], len(snap["sheets"][0]["rows"])) == (1, 4)

    @pytest.mark.parametrize(
        ("operation", "status", "code"),
        [
            ({"type": "set", "op": "o", "cells": []}, 400, "invalid"),
            ({"type": "paint", "op": "o"}, 400, "invalid"),
            ({"type": "sync", "since": 0}, 400, "invalid"),
            (set_op("o", (1, 1, "x" * 10_001)), 413, "too_large"),
            (set_op("o", (9, 1, "x")), 404, "not_found"),
            ({"type": "insert_rows", "op": "o", "before": 77, "count": 1}, 404, "not_found"),
        ],
    )
    def test_post_ops_refused_error_code_nothing_applied(self, team, operation, status, code):
        before = workbook_state(team.workbook_id)
        assert_error(call(client_for(team.ada), "POST", self.url(team), operation), status, code)
        assert workbook_state(team.workbook_id) == before

    @pytest.mark.parametrize("body", ["{not json", '{"type": "set", "op": "o", "cells": [{"row": 1, "col": 1, "value": NaN}]}', "[1, 2]", b"\xff{}"])
    def test_post_ops_malformed_json_400(self, team, body):
        assert_error(call(client_for(team.ada), "POST", self.url(team), body), 400, "invalid")

    def test_post_ops_body_over_message_limit_413(self, team, settings):
        settings.TABULA_LIMITS = {**settings.TABULA_LIMITS, "max_message_bytes": 200}
        small = set_op("small", (1, 1, "x"))
        big = set_op("big", (1, 1, "x" * 300))
        assert call(client_for(team.ada), "POST", self.url(team), small).status_code == 201
        assert_error(call(client_for(team.ada), "POST", self.url(team), big), 413, "too_large")
        assert workbook_state(team.workbook_id)[0]["rev"] == 1

    def test_post_ops_body_over_default_mib_413(self, team):
        body = json.dumps(set_op("big", (1, 1, "x"))) + " " * (1024 * 1024)
        assert_error(call(client_for(team.ada), "POST", self.url(team), body), 413, "too_large")

    def test_post_ops_over_http_rate_429(self, team, settings):
        settings.TABULA_LIMITS = {**settings.TABULA_LIMITS, "http_ops_per_minute": 2}
        client = client_for(team.ada)
        statuses = [call(client, "POST", self.url(team), set_op(f"o{i}", (1, 1, i))).status_code for i in range(2)]
        assert statuses == [201, 201]
        assert_error(call(client, "POST", self.url(team), set_op("o2", (1, 1, 2))), 429, "rate_limited")
        assert workbook_state(team.workbook_id)[0]["rev"] == 2
        assert call(client_for(team.bob), "POST", self.url(team), set_op("b", (1, 1, "bob"))).status_code == 201  # a budget per user

    @pytest.mark.parametrize(
        "method, path, body",
        [
            ("PATCH", "/api/workbooks/{id}/", {"name": "N"}),
            ("PUT", "/api/workbooks/{id}/members/dee", {"role": "viewer"}),
            ("DELETE", "/api/workbooks/{id}/members/bob", None),
            ("POST", "/api/workbooks/", {"name": "New"}),
        ],
    )
    def test_every_write_counts_against_http_rate_429(self, team, settings, method, path, body):
        settings.TABULA_LIMITS = {**settings.TABULA_LIMITS, "http_ops_per_minute": 2}
        client = client_for(team.ada)
        for i in range(2):
            assert call(client, "POST", self.url(team), set_op(f"o{i}", (1, 1, i))).status_code == 201
        assert_error(call(client, method, path.format(id=team.workbook_id), body), 429, "rate_limited")
        assert call(client, "GET", f"/api/workbooks/{team.workbook_id}/").status_code == 200  # reads are not counted
        assert (workbook_state(team.workbook_id)[0]["name"], Member.objects.filter(workbook_id=team.workbook_id).count()) == ("Budget", 3)

    def test_get_snapshot_streamed_its_read_ends_when_the_answer_is_closed(self, team):
        blocks = len(connection.atomic_blocks)
        response = client_for(team.cy).get(f"/api/workbooks/{team.workbook_id}/")
        assert response.streaming and len(connection.atomic_blocks) == blocks + 1  # read on demand
        response.close()  # as a WSGI server does, read to the end or not
        assert len(connection.atomic_blocks) == blocks

    def test_post_ops_viewer_refused_before_body_read_403(self, team):
        # Not even parsed: a viewer's malformed (or huge) body gets the same 403 as a good one.
        assert_error(call(client_for(team.cy), "POST", self.url(team), "{not json"), 403, "forbidden")

    def test_post_ops_insert_past_cells_limit_413(self, team, settings):
        settings.TABULA_LIMITS = {**settings.TABULA_LIMITS, "max_cells": 8}  # the workbook is 3 x 2
        client = client_for(team.ada)
        assert_error(call(client, "POST", self.url(team), {"type": "insert_cols", "op": "c", "before": None, "count": 2}), 413, "too_large")
        assert call(client, "POST", self.url(team), {"type": "insert_rows", "op": "r", "before": None, "count": 1}).status_code == 201
        assert_error(call(client, "POST", self.url(team), {"type": "insert_rows", "op": "r2", "before": None, "count": 1}), 413, "too_large")

    @pytest.mark.parametrize("value", ['"\\ud800"', '"a\\u0000b"'])
    def test_post_ops_lone_surrogate_or_nul_400_nothing_applied(self, team, value):
        body = '{"type": "set", "op": "p", "cells": [{"row": 1, "col": 1, "value": ' + value + "}]}"
        assert_error(call(client_for(team.ada), "POST", self.url(team), body), 400, "invalid")
        assert workbook_state(team.workbook_id)[0]["rev"] == 0

    @pytest.mark.parametrize("body", ['{"name": "\\udfff"}', '{"name": "x\\u0000"}', '{"name": "ok", "op": "\\ud800"}'])
    def test_patch_and_post_workbook_poison_name_or_op_400(self, team, body):
        client = client_for(team.ada)
        assert_error(call(client, "PATCH", f"/api/workbooks/{team.workbook_id}/", body), 400, "invalid")
        assert_error(call(client, "POST", "/api/workbooks/", body), 400, "invalid")
        assert workbook_state(team.workbook_id)[0]["name"] == "Budget"


class BroadcastTest:
    @pytest.fixture
    def listener(self, settings, team):
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
        channel_layers.backends.clear()
        layer = get_channel_layer()
        channel = async_to_sync(layer.new_channel)()
        async_to_sync(layer.group_add)(broadcast.group_name(team.workbook_id), channel)
        yield lambda: async_to_sync(layer.receive)(channel)
        channel_layers.backends.clear()

    def test_post_ops_and_patch_sockets_receive_same_change(self, team, listener):
        client = client_for(team.bob)
        op_change = call(client, "POST", f"/api/workbooks/{team.workbook_id}/ops", set_op("s", (1, 1, "x"))).json()
        rename_change = call(client, "PATCH", f"/api/workbooks/{team.workbook_id}/", {"name": "Plan"}).json()
        assert json.loads(listener()["changes"][0][1]) == op_change
        assert json.loads(listener()["changes"][0][1]) == rename_change


class CsrfTest:
    def csrf_client(self, user):
        client = client_for(user, enforce_csrf_checks=True)
        client.get("/")  # a page with a form sets the CSRF cookie
        return client

    @pytest.mark.parametrize(
        ("method", "path", "body"),
        [
            ("POST", "/api/workbooks/", {"name": "New"}),
            ("POST", "/api/workbooks/{id}/ops", set_op("o", (1, 1, "x"))),
            ("PATCH", "/api/workbooks/{id}/", {"name": "N"}),
            ("PUT", "/api/workbooks/{id}/members/dee", {"role": "viewer"}),
            ("DELETE", "/api/workbooks/{id}/members/bob", None),
            ("DELETE", "/api/workbooks/{id}/", None),
        ],
    )
    def test_unsafe_method_without_token_403_json_nothing_changes(self, team, method, path, body):
        before = workbook_state(team.workbook_id)
        response = call(self.csrf_client(team.ada), method, path.format(id=team.workbook_id), body)
        assert_error(response, 403, "forbidden")
        assert "CSRF" in response.json()["message"]
        assert workbook_state(team.workbook_id) == before
        assert Workbook.objects.count() == 1

    def test_post_with_csrf_header_works(self, team):
        client = self.csrf_client(team.ada)
        token = client.cookies["csrftoken"].value
        response = call(client, "POST", f"/api/workbooks/{team.workbook_id}/ops", set_op("o", (1, 1, "x")), HTTP_X_CSRFTOKEN=token)
        assert response.status_code == 201
        assert call(client, "PATCH", f"/api/workbooks/{team.workbook_id}/", {"name": "N"}, HTTP_X_CSRFTOKEN=token).status_code == 200

    def test_get_without_token_works(self, team):
        assert call(self.csrf_client(team.ada), "GET", f"/api/workbooks/{team.workbook_id}/").status_code == 200


class MethodNotAllowedTest:
    @pytest.mark.parametrize(
        ("method", "path", "allow"),
        [
            ("PUT", "/api/workbooks/", "GET, POST"),
            ("DELETE", "/api/workbooks/", "GET, POST"),
            ("POST", "/api/workbooks/{id}/", "GET, PATCH, DELETE"),
            ("PUT", "/api/workbooks/{id}/", "GET, PATCH, DELETE"),
            ("POST", "/api/workbooks/{id}/members", "GET"),
            ("GET", "/api/workbooks/{id}/members/bob", "PUT, DELETE"),
            ("POST", "/api/workbooks/{id}/changes", "GET"),
            ("GET", "/api/workbooks/{id}/ops", "POST"),
        ],
    )
    def test_wrong_method_405_with_allow(self, team, method, path, allow):
        response = call(client_for(team.ada), method, path.format(id=team.workbook_id), {})
        assert_error(response, 405, "method_not_allowed")
        assert response["Allow"] == allow


@pytest.mark.django_db
class NotFoundTest:
    def test_unknown_api_path_json_404(self, client):
        response = client.get("/api/nothing-here/")
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"

    def test_unknown_page_path_html_404(self, client):
        response = client.get("/nothing-here/")
        assert response.status_code == 404
        assert response["Content-Type"].startswith("text/html")


# Text the databases cannot store, sent every way the API takes text, on each database: PostgreSQL's
# text refuses U+0000 and every encoder refuses a lone surrogate, where SQLite stored them; every
# answer is a 400 and nothing changes, on both.
POISON_SCENARIO = r"""
import json
import django
django.setup()
from django.contrib.auth import get_user_model
from django.test import Client
from workbooks import services
from workbooks.models import Change, Member, Workbook

users = get_user_model().objects
ada = users.create_user(username="ada", password="unused-pw")
users.create_user(username="bob", password="unused-pw")
workbook_id = services.create_workbook(user=ada, name="Budget", rows=2, cols=2).id
client = Client(HTTP_HOST="127.0.0.1")
client.force_login(ada)
statuses = []
for method, path, body in [
    ("POST", f"/api/workbooks/{workbook_id}/ops", '{"type": "set", "op": "nul", "cells": [{"row": 1, "col": 1, "value": "a\\u0000"}]}'),
    ("POST", f"/api/workbooks/{workbook_id}/ops", '{"type": "set", "op": "sur", "cells": [{"row": 1, "col": 1, "value": "\\ud800"}]}'),
    ("POST", f"/api/workbooks/{workbook_id}/ops", '{"type": "set", "op": "op\\u0000", "cells": [{"row": 1, "col": 1, "value": 1}]}'),
    ("PATCH", f"/api/workbooks/{workbook_id}/", '{"name": "x\\u0000"}'),
    ("POST", "/api/workbooks/", '{"name": "\\udfff"}'),
    ("PUT", f"/api/workbooks/{workbook_id}/members/bob%00", '{"role": "editor"}'),
    ("DELETE", f"/api/workbooks/{workbook_id}/members/bob%00", ""),
]:
    response = client.generic(method, path, body, content_type="application/json")
    statuses.append([response.status_code, response.json()["error"]])
statuses.append([client.post("/workbooks/new", {"name": "N\x00"}).status_code, "page"])
print(json.dumps({
    "statuses": statuses,
    "workbooks": list(Workbook.objects.values_list("name", "rev")),
    "members": Member.objects.count(),
    "changes": Change.objects.count(),
}))
"""


class PoisonAcrossDatabasesTest:
    @pytest.mark.parametrize("database", ["sqlite", "postgresql"])
    def test_poison_text_refused_400_nothing_changed(self, database, request, tmp_path):
        result = support.scenario_result(database, request, tmp_path, POISON_SCENARIO)
        assert result["statuses"] == [[400, "invalid"]] * 7 + [[400, "page"]]
        assert (result["workbooks"], result["members"], result["changes"]) == ([["Budget", 0]], 1, 0)
