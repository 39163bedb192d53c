"""The admin: a superuser can browse sheets, members and the change log; the change log stays
read-only, and every edit of a sheet or a membership goes through the services, so it is logged and
broadcast and the sockets concerned are told."""

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync
from channels.layers import channel_layers, get_channel_layer
from django.contrib.auth import get_user_model
from django.test import Client
from model_bakery import baker

from sheet import broadcast, services
from sheet.domain.values import CellWrite, SetCells
from sheet.models import Change, Member, Sheet

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client():
    client = Client()
    client.force_login(baker.make(get_user_model(), username="root", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def sheet_id():
    ada = baker.make(get_user_model(), username="ada")
    sheet_id = services.create_sheet(user=ada, name="Quarterly budget", rows=2, cols=2).id
    baker.make(Member, sheet_id=sheet_id, user__username="bob", role="viewer")
    services.commit_operation(sheet_id=sheet_id, user=ada, operation=SetCells("seed-op", (CellWrite(1, 1, "x"),)))
    return sheet_id


class SheetAdminTest:
    def test_sheet_changelist_lists_sheet(self, admin_client, sheet_id):
        response = admin_client.get("/admin/sheet/sheet/")
        assert response.status_code == 200
        assert "Quarterly budget" in response.content.decode()

    def test_sheet_change_page_shows_members_inline(self, admin_client, sheet_id):
        response = admin_client.get(f"/admin/sheet/sheet/{sheet_id}/change/")
        assert response.status_code == 200
        assert "bob" in response.content.decode()

    def test_sheet_changelist_search_by_name(self, admin_client, sheet_id):
        assert "Quarterly budget" in admin_client.get("/admin/sheet/sheet/", {"q": "quarterly"}).content.decode()
        assert "Quarterly budget" not in admin_client.get("/admin/sheet/sheet/", {"q": "nothing-like-it"}).content.decode()


class MemberAdminTest:
    def test_member_changelist_lists_roles(self, admin_client, sheet_id):
        response = admin_client.get("/admin/sheet/member/")
        assert response.status_code == 200
        text = response.content.decode()
        assert "ada" in text and "bob" in text


class ChangeAdminTest:
    def test_change_changelist_lists_log(self, admin_client, sheet_id):
        response = admin_client.get("/admin/sheet/change/")
        assert response.status_code == 200
        assert "seed-op" in response.content.decode()

    def test_change_add_refused(self, admin_client, sheet_id):
        assert admin_client.get("/admin/sheet/change/add/").status_code == 403

    def test_change_edit_refused_view_allowed(self, admin_client, sheet_id):
        change = Change.objects.get(sheet_id=sheet_id)
        response = admin_client.post(f"/admin/sheet/change/{change.pk}/change/", {"op": "edited"})
        assert response.status_code == 403
        assert Change.objects.get(pk=change.pk).op == "seed-op"
        assert admin_client.get(f"/admin/sheet/change/{change.pk}/change/").status_code == 200


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


def role_of(sheet_id, username):
    return Member.objects.filter(sheet_id=sheet_id, user__username=username).values_list("role", flat=True).first()


def user_id(username):
    return get_user_model().objects.get(username=username).pk


def change_sheet(client, sheet_id, *, name=None, roles=None, delete=(), add=()):
    """Posts the sheet's change form: a name, new roles by username, memberships to delete, and
    (username, role) pairs to add in the members inline."""
    existing = list(Member.objects.filter(sheet_id=sheet_id).order_by("pk").select_related("user"))
    data = {
        "name": name or Sheet.objects.get(pk=sheet_id).name,
        "members-TOTAL_FORMS": len(existing) + len(add),
        "members-INITIAL_FORMS": len(existing),
        "members-MIN_NUM_FORMS": 0,
        "members-MAX_NUM_FORMS": 1000,
    }
    for i, member in enumerate(existing):
        username = member.user.username
        data |= {f"members-{i}-id": member.pk, f"members-{i}-sheet": sheet_id, f"members-{i}-role": (roles or {}).get(username, member.role)}
        if username in delete:
            data[f"members-{i}-DELETE"] = "on"
    for i, (username, role) in enumerate(add, start=len(existing)):
        data |= {f"members-{i}-sheet": sheet_id, f"members-{i}-user": user_id(username), f"members-{i}-role": role}
    return client.post(f"/admin/sheet/sheet/{sheet_id}/change/", data)


@pytest.mark.django_db(transaction=True)  # the sockets are told once the admin's transaction commits
class SheetAdminThroughServicesTest:
    def test_rename_is_a_change_by_the_admin_at_next_rev_sent_to_sockets(self, admin_client, sheet_id, told):
        changes = told(broadcast.group_name(sheet_id))

        response = change_sheet(admin_client, sheet_id, name="  Annual budget ")

        assert response.status_code == 302
        change = Change.objects.get(sheet_id=sheet_id, rev=2)
        assert (change.kind, change.data, change.author_name) == ("rename", {"name": "Annual budget"}, "root")
        assert Sheet.objects.get(pk=sheet_id).name == "Annual budget"
        sent = changes()
        assert [json.loads(text)["name"] for _, text in sent["changes"]] == ["Annual budget"]

    def test_rename_to_invisible_name_refused_nothing_changes(self, admin_client, sheet_id):
        response = change_sheet(admin_client, sheet_id, name="\u200b")

        assert response.status_code == 200
        assert Sheet.objects.get(pk=sheet_id).name == "Quarterly budget"
        assert not Change.objects.filter(sheet_id=sheet_id, kind="rename").exists()

    def test_inline_role_changed_that_users_sockets_told_to_reconnect(self, admin_client, sheet_id, told):
        closed = told(broadcast.group_name(sheet_id))

        response = change_sheet(admin_client, sheet_id, roles={"bob": "editor"})

        assert response.status_code == 302
        assert role_of(sheet_id, "bob") == "editor"
        assert closed() == {"type": "sheet.closed", "sheet": sheet_id, "code": broadcast.CLOSE_ROLE_CHANGED, "user_id": user_id("bob")}

    def test_inline_member_deleted_that_users_sockets_closed(self, admin_client, sheet_id, told):
        closed = told(broadcast.group_name(sheet_id))

        response = change_sheet(admin_client, sheet_id, delete=["bob"])

        assert response.status_code == 302
        assert role_of(sheet_id, "bob") is None
        assert closed() == {"type": "sheet.closed", "sheet": sheet_id, "code": broadcast.CLOSE_ACCESS_REMOVED, "user_id": user_id("bob")}

    def test_inline_member_added_active_user_gets_role(self, admin_client, sheet_id):
        baker.make(get_user_model(), username="cy")

        response = change_sheet(admin_client, sheet_id, add=[("cy", "viewer")])

        assert response.status_code == 302
        assert role_of(sheet_id, "cy") == "viewer"

    def test_inline_inactive_user_or_owner_role_refused(self, admin_client, sheet_id):
        baker.make(get_user_model(), username="gone", is_active=False)
        baker.make(get_user_model(), username="cy")

        inactive = change_sheet(admin_client, sheet_id, add=[("gone", "viewer")])
        owner = change_sheet(admin_client, sheet_id, add=[("cy", "owner")])

        assert (inactive.status_code, owner.status_code) == (200, 200)
        assert "Only an active user can be given a role." in inactive.content.decode()
        assert (role_of(sheet_id, "gone"), role_of(sheet_id, "cy")) == (None, None)

    def test_inline_owner_cannot_be_deleted_or_changed(self, admin_client, sheet_id):
        deleted = change_sheet(admin_client, sheet_id, delete=["ada"])
        changed = change_sheet(admin_client, sheet_id, roles={"ada": "viewer"})

        assert deleted.status_code == 200
        assert "The owner&#x27;s role cannot be taken away" in deleted.content.decode()
        assert changed.status_code == 302  # the owner's role is not a field anyone can change
        assert role_of(sheet_id, "ada") == "owner"

    def test_delete_removes_everything_and_closes_sockets(self, admin_client, sheet_id, told):
        closed = told(broadcast.group_name(sheet_id))
        confirm = admin_client.get(f"/admin/sheet/sheet/{sheet_id}/delete/")

        response = admin_client.post(f"/admin/sheet/sheet/{sheet_id}/delete/", {"post": "yes"})

        assert "Quarterly budget (2 rows, 2 columns)" in confirm.content.decode()
        assert response.status_code == 302
        assert not Sheet.objects.filter(pk=sheet_id).exists()
        assert not Member.objects.filter(sheet_id=sheet_id).exists()
        assert closed() == {"type": "sheet.closed", "sheet": sheet_id, "code": broadcast.CLOSE_SHEET_DELETED}

    def test_bulk_delete_action_closes_each_sheets_sockets(self, admin_client, sheet_id, told):
        other = services.create_sheet(user=get_user_model().objects.get(username="ada"), name="Other", rows=1, cols=1).id
        closed = {i: told(broadcast.group_name(i)) for i in (sheet_id, other)}

        response = admin_client.post("/admin/sheet/sheet/", {"action": "delete_selected", "_selected_action": [sheet_id, other], "post": "yes"})

        assert response.status_code == 302
        assert not Sheet.objects.exists()
        assert [closed[i]()["code"] for i in (sheet_id, other)] == [broadcast.CLOSE_SHEET_DELETED] * 2

    def test_add_refused(self, admin_client, sheet_id):
        assert admin_client.get("/admin/sheet/sheet/add/").status_code == 403


def bulk_delete(*members) -> dict:
    """The changelist's "Delete selected" action, confirmed."""
    return {"action": "delete_selected", "_selected_action": [m.pk for m in members], "post": "yes"}


@pytest.mark.django_db(transaction=True)
class MemberAdminThroughServicesTest:
    def test_add_gives_active_user_role(self, admin_client, sheet_id):
        cy = baker.make(get_user_model(), username="cy")

        response = admin_client.post("/admin/sheet/member/add/", {"sheet": sheet_id, "user": cy.pk, "role": "editor"})

        assert response.status_code == 302
        assert role_of(sheet_id, "cy") == "editor"

    def test_add_inactive_user_refused(self, admin_client, sheet_id):
        gone = baker.make(get_user_model(), username="gone", is_active=False)

        response = admin_client.post("/admin/sheet/member/add/", {"sheet": sheet_id, "user": gone.pk, "role": "editor"})

        assert response.status_code == 200
        assert role_of(sheet_id, "gone") is None

    def test_change_role_that_users_sockets_told_to_reconnect(self, admin_client, sheet_id, told):
        closed = told(broadcast.group_name(sheet_id))
        member = Member.objects.get(sheet_id=sheet_id, user__username="bob")

        response = admin_client.post(f"/admin/sheet/member/{member.pk}/change/", {"role": "editor"})

        assert response.status_code == 302
        assert role_of(sheet_id, "bob") == "editor"
        assert closed()["code"] == broadcast.CLOSE_ROLE_CHANGED

    def test_delete_and_bulk_delete_close_their_sockets_owner_kept(self, admin_client, sheet_id, told):
        closed = told(broadcast.group_name(sheet_id))
        cy = baker.make(get_user_model(), username="cy")
        services.set_member(sheet_id=sheet_id, user=get_user_model().objects.get(username="ada"), username="cy", role="viewer")
        bob, cy_member, owner = (Member.objects.get(sheet_id=sheet_id, user__username=n) for n in ("bob", "cy", "ada"))

        deleted = admin_client.post(f"/admin/sheet/member/{bob.pk}/delete/", {"post": "yes"})
        owner_page = admin_client.get(f"/admin/sheet/member/{owner.pk}/delete/")
        with_owner = admin_client.post("/admin/sheet/member/", bulk_delete(cy_member, owner))
        bulk = admin_client.post("/admin/sheet/member/", bulk_delete(cy_member))

        assert (deleted.status_code, owner_page.status_code, with_owner.status_code, bulk.status_code) == (302, 403, 403, 302)
        assert [closed()["user_id"] for _ in range(2)] == [user_id("bob"), cy.pk]
        assert list(Member.objects.filter(sheet_id=sheet_id).values_list("user__username", "role")) == [("ada", "owner")]


class AdminAccessTest:
    def test_admin_not_staff_redirected_to_login(self, sheet_id):
        client = Client()
        client.force_login(baker.make(get_user_model()))
        response = client.get("/admin/sheet/sheet/")
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
