"""Project-wide middleware as a black box, through the test client: refused text, and the headers
every response carries."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from model_bakery import baker

from proj.middleware import CONTENT_SECURITY_POLICY
from workbooks import services
from workbooks.models import Member, Workbook

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada():
    return baker.make(get_user_model(), username="ada")


@pytest.fixture
def client(ada):
    client = Client()
    client.force_login(ada)
    return client


class RefuseBadTextTest:
    def test_refuse_bad_text_nul_in_api_path_invalid_json(self, client, ada):
        workbook_id = services.create_workbook(user=ada, name="S", rows=1, cols=1).id
        response = client.put(f"/api/workbooks/{workbook_id}/members/bob%00", '{"role": "editor"}', content_type="application/json")
        assert response.status_code == 400
        assert response.json()["error"] == "invalid"
        assert "U+0000" in response.json()["message"]

    def test_refuse_bad_text_nul_in_query_invalid(self, client, ada):
        workbook_id = services.create_workbook(user=ada, name="S", rows=1, cols=1).id
        response = client.get(f"/api/workbooks/{workbook_id}/changes?since=0&x=%00")
        assert response.status_code == 400
        assert response.json()["error"] == "invalid"

    def test_refuse_bad_text_nul_in_form_field_page_says_why_nothing_created(self, client):
        response = client.post("/workbooks/new", {"name": "Budget\x00"})
        assert response.status_code == 400
        assert b"U+0000" in response.content
        assert not Workbook.objects.exists()

    def test_refuse_bad_text_nul_in_share_form_nothing_shared(self, client, ada):
        workbook_id = services.create_workbook(user=ada, name="S", rows=1, cols=1).id
        baker.make(get_user_model(), username="bob")
        response = client.post(f"/workbooks/{workbook_id}/share", {"username": "bob\x00", "role": "editor"})
        assert response.status_code == 400
        assert Member.objects.filter(workbook_id=workbook_id).count() == 1

    def test_refuse_bad_text_ordinary_request_passes(self, client):
        response = client.post("/workbooks/new", {"name": "Budget \u00e9t\u00e9 \U0001f4ca"})
        assert response.status_code == 302
        assert Workbook.objects.get().name == "Budget \u00e9t\u00e9 \U0001f4ca"


class SecurityHeadersTest:
    @pytest.mark.parametrize("path", ["/", "/accounts/login/", "/api/workbooks/", "/no-such-page/"])
    def test_security_headers_policy_and_no_store_on_pages_and_api(self, client, path):
        response = client.get(path)
        assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
        assert "'unsafe-eval'" not in CONTENT_SECURITY_POLICY
        assert set(response["Cache-Control"].replace(" ", "").split(",")) >= {"no-store", "private"}

    def test_security_headers_snapshot_not_cached(self, client, ada):
        workbook_id = services.create_workbook(user=ada, name="S", rows=1, cols=1).id
        response = client.get(f"/api/workbooks/{workbook_id}/")
        response.close()  # a streamed snapshot holds its read transaction open until closed
        assert response.status_code == 200
        assert "no-store" in response["Cache-Control"]
