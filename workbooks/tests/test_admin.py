"""The admin: a superuser can browse workbooks, members and the change log; the change log stays
read-only, and every edit of a workbook or a membership goes through the services, so it is logged and
broadcast and the sockets concerned are told."""

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync
from channels.layers import channel_layers, get_channel_layer
from django.contrib.auth import get_user_model
from django.test import Client
from model_bakery import baker

from workbooks import broadcast, services
from workbooks.domain.values import CellWrite, SetCells
from workbooks.models import Change, Member, Workbook

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client():
    client = Client()
    client.force_login(baker.make(get_user_model(), username="root", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def workbook_id():
    ada = baker.make(get_user_model(), username="ada")
    workbook_id = services.create_workbook(user=ada, name="Quarterly budget", rows=2, cols=2).id
    baker.make(Member, workbook_id=workbook_id, user__username="bob", role="viewer")
    services.commit_operation(workbook_id=workbook_id, user=ada, operation=SetCells("seed-op", (CellWrite(1, 1, "x"),)))
    return workbook_id


class WorkbookAdminTest:
    def test_workbook_changelist_lists_workbook(self, admin_client, workbook_id):
        response = admin_client.get("/admin/workbooks/workbook/")
        assert response.status_code == 200
        assert "Quarterly budget" in response.content.decode()

    def test_workbook_change_page_shows_members_inline(self, admin_client, workbook_id):
        response = admin_client.get(f"/admin/workbooks/workbook/{workbook_id}/change/")
        assert response.status_code == 200
        assert "bob" in response.content.decode()

    def test_workbook_changelist_search_by_name(self, admin_client, workbook_id):
        assert "Quarterly budget" in admin_client.get("/admin/workbooks/workbook/", {"q": "quarterly"}).content.decode()
        assert "Quarterly budget" not in admin_client.get("/admin/workbooks/workbook/", {"q": "nothing-like-it"}).content.decode()


class MemberAdminTest:
    def test_member_changelist_lists_roles(self, admin_client, workbook_id):
        response = admin_client.get("/admin/workbooks/member/")
        assert response.status_code == 200
        text = response.content.decode()
        assert "ada" in text and "bob" in text


class ChangeAdminTest:
    def test_change_changelist_lists_log(self, admin_client, workbook_id):
        response = admin_client.get("/admin/workbooks/change/")
        assert response.status_code == 200
        assert "seed-op" in response.content.decode()

    def test_change_add_refused(self, admin_client, workbook_id):
        assert admin_client.get("/admin/workbooks/change/add/").status_code == 403

    def test_change_edit_refused_view_allowed(self, admin_client, workbook_id):
        change = Change.objects.get(workbook_id=workbook_id)
        response = admin_client.post(f"/admin/workbooks/change/{change.pk}/change/", {"op": "edited"})
        assert response.status_code == 403
        assert Change.objects.get(pk=change.pk).op == "seed-op"
        assert admin_client.get(f"/admin/workbooks/change/{change.pk}/change/").status_code == 200


@pytest.fixture
def told(settings):
    """``told(group)`` listens to a channel-layer group; the listener returns the next message (or fails)."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.clear()
    layer = get_channel_layer()

    def listen(group):
        channel = async_to_sync(layer.new_channel)()
        async_to_sync(layer.group_add)(group, channel)

        async def receive():
            return await asyncio.wait_for(layer.receive(channel), 5)

        return async_to_sync(receive)

    yield listen
    channel_layers.backends.clear()


def role_of(workbook_id, username):
    return Member.objects.filter(workbook_id=workbook_id, user__username=username).values_list("role", flat=True).first()


def user_id(username):
    return get_user_model().objects.get(username=username).pk


def change_workbook(client, workbook_id, *, name=None, roles=None, delete=(), add=()):
    """Posts the workbook's change form: a name, new roles by username, memberships to delete, and
    (username, role) pairs to add in the members inline."""
    existing = list(Member.objects.filter(workbook_id=workbook_id).order_by("pk").select_related("user"))
    data = {
        "name": name or Workbook.objects.get(pk=workbook_id).name,
        "members-TOTAL_FORMS": len(existing) + len(add),
        "members-INITIAL_FORMS": len(existing),
        "members-MIN_NUM_FORMS": 0,
        "members-MAX_NUM_FORMS": 1000,
    }
    for i, member in enumerate(existing):
        username = member.user.username
        data |= {f"members-{i}-id": member.pk, f"members-{i}-workbook": workbook_id, f"members-{i}-role": (roles or {}).get(username, member.role)}
        if username in delete:
            data[f"members-{i}-DELETE"] = "on"
    for i, (username, role) in enumerate(add, start=len(existing)):
        data |= {f"members-{i}-workbook": workbook_id, f"members-{i}-user": user_id(username), f"members-{i}-role": role}
    return client.post(f"/admin/workbooks/workbook/{workbook_id}/change/", data)


@pytest.mark.django_db(transaction=True)  # the sockets are told once the admin's transaction commits
class WorkbookAdminThroughServicesTest:
    def test_rename_is_a_change_by_the_admin_at_next_rev_sent_to_sockets(self, admin_client, workbook_id, told):
        changes = told(broadcast.group_name(workbook_id))

        response = change_workbook(admin_client, workbook_id, name="  Annual budget ")

        assert response.status_code == 302
        change = Change.objects.get(workbook_id=workbook_id, rev=2)
        assert (change.kind, change.data, change.author_name) == ("rename", {"name": "Annual budget"}, "root")
        assert Workbook.objects.get(pk=workbook_id).name == "Annual budget"
        sent = changes()
        assert [json.loads(text)["name"] for _, text in sent["changes"]] == ["Annual budget"]

    def test_rename_to_invisible_name_refused_nothing_changes(self, admin_client, workbook_id):
        response = change_workbook(admin_client, workbook_id, name="\u200b")

        assert response.status_code == 200
        assert Workbook.objects.get(pk=workbook_id).name == "Quarterly budget"
        assert not Change.objects.filter(workbook_id=workbook_id, kind="rename").exists()

    def test_inline_role_changed_that_users_sockets_told_to_reconnect(self, admin_client, workbook_id, told):
        closed = told(broadcast.group_name(workbook_id))

        response = change_workbook(admin_client, workbook_id, roles={"bob": "editor"})

        assert response.status_code == 302
        assert role_of(workbook_id, "bob") == "editor"
        assert closed() == {"type": "workbook.closed", "workbook": workbook_id, "code": broadcast.CLOSE_ROLE_CHANGED, "user_id": user_id("bob")}

    def test_inline_member_deleted_that_users_sockets_closed(self, admin_client, workbook_id, told):
        closed = told(broadcast.group_name(workbook_id))

        response = change_workbook(admin_client, workbook_id, delete=["bob"])

        assert response.status_code == 302
        assert role_of(workbook_id, "bob") is None
        assert closed() == {"type": "workbook.closed", "workbook": workbook_id, "code": broadcast.CLOSE_ACCESS_REMOVED, "user_id": user_id("bob")}

    def test_inline_member_added_active_user_gets_role(self, admin_client, workbook_id):
        baker.make(get_user_model(), username="cy")

        response = change_workbook(admin_client, workbook_id, add=[("cy", "viewer")])

        assert response.status_code == 302
        assert role_of(workbook_id, "cy") == "viewer"

    def test_inline_inactive_user_or_owner_role_refused(self, admin_client, workbook_id):
        baker.make(get_user_model(), username="gone", is_active=False)
        baker.make(get_user_model(), username="cy")

        inactive = change_workbook(admin_client, workbook_id, add=[("gone", "viewer")])
        owner = change_workbook(admin_client, workbook_id, add=[("cy", "owner")])

        assert (inactive.status_code, owner.status_code) == (200, 200)
        assert "Only an active user can be given a role." in inactive.content.decode()
        assert (role_of(workbook_id, "gone"), role_of(workbook_id, "cy")) == (None, None)

    def test_inline_owner_cannot_be_deleted_or_changed(self, admin_client, workbook_id):
        deleted = change_workbook(admin_client, workbook_id, delete=["ada"])
        changed = change_workbook(admin_client, workbook_id, roles={"ada": "viewer"})

        assert deleted.status_code == 200
        assert "The owner&#x27;s role cannot be taken away" in deleted.content.decode()
        assert changed.status_code == 302  # the owner's role is not a field anyone can change
        assert role_of(workbook_id, "ada") == "owner"

    def test_delete_removes_everything_and_closes_sockets(self, admin_client, workbook_id, told):
        closed = told(broadcast.group_name(workbook_id))
        confirm = admin_client.get(f"/admin/workbooks/workbook/{workbook_id}/delete/")

        response = admin_client.post(f"/admin/workbooks/workbook/{workbook_id}/delete/", {"post": "yes"})

        assert "Quarterly budget (1 sheet, 4 cells)" in confirm.content.decode()
        assert response.status_code == 302
        assert not Workbook.objects.filter(pk=workbook_id).exists()
        assert not Member.objects.filter(workbook_id=workbook_id).exists()
        assert closed() == {"type": "workbook.closed", "workbook": workbook_id, "code": broadcast.CLOSE_WORKBOOK_DELETED}

    def test_bulk_delete_action_closes_each_workbooks_sockets(self, admin_client, workbook_id, told):
        other = services.create_workbook(user=get_user_model().objects.get(username="ada"), name="Other", rows=1, cols=1).id
        closed = {i: told(broadcast.group_name(i)) for i in (workbook_id, other)}

        response = admin_client.post(
            "/admin/workbooks/workbook/", {"action": "delete_selected", "_selected_action": [workbook_id, other], "post": "yes"}
        )

        assert response.status_code == 302
        assert not Workbook.objects.exists()
        assert [closed[i]()["code"] for i in (workbook_id, other)] == [broadcast.CLOSE_WORKBOOK_DELETED] * 2

    def test_add_refused(self, admin_client, workbook_id):
        assert admin_client.get("/admin/workbooks/workbook/add/").status_code == 403


def bulk_delete(*members) -> dict:
    """The changelist's "Delete selected" action, confirmed."""
    return {"action": "delete_selected", "_selected_action": [m.pk for m in members], "post": "yes"}


@pytest.mark.django_db(transaction=True)
class MemberAdminThroughServicesTest:
    def test_add_gives_active_user_role(self, admin_client, workbook_id):
        cy = baker.make(get_user_model(), username="cy")

        response = admin_client.post("/admin/workbooks/member/add/", {"workbook": workbook_id, "user": cy.pk, "role": "editor"})

        assert response.status_code == 302
        assert role_of(workbook_id, "cy") == "editor"

    def test_add_inactive_user_refused(self, admin_client, workbook_id):
        gone = baker.make(get_user_model(), username="gone", is_active=False)

        response = admin_client.post("/admin/workbooks/member/add/", {"workbook": workbook_id, "user": gone.pk, "role": "editor"})

        assert response.status_code == 200
        assert role_of(workbook_id, "gone") is None

    def test_change_role_that_users_sockets_told_to_reconnect(self, admin_client, workbook_id, told):
        closed = told(broadcast.group_name(workbook_id))
        member = Member.objects.get(workbook_id=workbook_id, user__username="bob")

        response = admin_client.post(f"/admin/workbooks/member/{member.pk}/change/", {"role": "editor"})

        assert response.status_code == 302
        assert role_of(workbook_id, "bob") == "editor"
        assert closed()["code"] == broadcast.CLOSE_ROLE_CHANGED

    def test_delete_and_bulk_delete_close_their_sockets_owner_kept(self, admin_client, workbook_id, told):
        closed = told(broadcast.group_name(workbook_id))
        cy = baker.make(get_user_model(), username="cy")
        services.set_member(workbook_id=workbook_id, user=get_user_model().objects.get(username="ada"), username="cy", role="viewer")
        bob, cy_member, owner = (Member.objects.get(workbook_id=workbook_id, user__username=n) for n in ("bob", "cy", "ada"))

        deleted = admin_client.post(f"/admin/workbooks/member/{bob.pk}/delete/", {"post": "yes"})
        owner_page = admin_client.get(f"/admin/workbooks/member/{owner.pk}/delete/")
        with_owner = admin_client.post("/admin/workbooks/member/", bulk_delete(cy_member, owner))
        bulk = admin_client.post("/admin/workbooks/member/", bulk_delete(cy_member))

        assert (deleted.status_code, owner_page.status_code, with_owner.status_code, bulk.status_code) == (302, 403, 403, 302)
        assert [closed()["user_id"] for _ in range(2)] == [user_id("bob"), cy.pk]
        assert list(Member.objects.filter(workbook_id=workbook_id).values_list("user__username", "role")) == [("ada", "owner")]


class AdminAccessTest:
    def test_admin_not_staff_redirected_to_login(self, workbook_id):
        client = Client()
        client.force_login(baker.make(get_user_model()))
        response = client.get("/admin/workbooks/workbook/")
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
