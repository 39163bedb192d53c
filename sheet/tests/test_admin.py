"""The admin: a superuser can browse sheets, members and the change log; changes stay read-only."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from model_bakery import baker

from sheet import services
from sheet.domain.values import CellWrite, SetCells
from sheet.models import Change, Member

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


class AdminAccessTest:
    def test_admin_not_staff_redirected_to_login(self, sheet_id):
        client = Client()
        client.force_login(baker.make(get_user_model()))
        response = client.get("/admin/sheet/sheet/")
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
