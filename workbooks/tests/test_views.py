"""The pages, through the test client: what a logged-in person can see and do with forms."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.test import Client, RequestFactory
from django.views import defaults
from model_bakery import baker

from tests import support
from workbooks import services
from workbooks.domain.values import Rename
from workbooks.models import Member, Workbook

pytestmark = pytest.mark.django_db

XSS_NAME = "<script>alert('x')</script> & co"


@pytest.fixture
def team():
    """ada owns a workbook shared with bob (editor) and cy (viewer); dee has no role."""
    users = {name: baker.make(get_user_model(), username=name) for name in ("ada", "bob", "cy", "dee")}
    workbook_id = services.create_workbook(user=users["ada"], name="Budget", rows=2, cols=2).id
    baker.make(Member, workbook_id=workbook_id, user=users["bob"], role="editor")
    baker.make(Member, workbook_id=workbook_id, user=users["cy"], role="viewer")
    return SimpleNamespace(workbook_id=workbook_id, **users)


def client_for(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def page_messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def workbook_name(workbook_id):
    return Workbook.objects.values_list("name", flat=True).get(pk=workbook_id)


class LoginRequiredTest:
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("get", "/"),
            ("get", "/workbooks/{id}/"),
            ("get", "/workbooks/{id}/share"),
            ("post", "/workbooks/new"),
            ("post", "/workbooks/{id}/rename"),
            ("post", "/workbooks/{id}/delete"),
            ("post", "/workbooks/{id}/share"),
        ],
    )
    def test_page_anonymous_redirected_to_login_nothing_changes(self, team, method, path):
        path = path.format(id=team.workbook_id)
        response = getattr(Client(), method)(path, {"name": "Hacked", "username": "dee", "role": "editor"})
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")
        assert workbook_name(team.workbook_id) == "Budget"
        assert Workbook.objects.count() == 1
        assert not Member.objects.filter(user=team.dee).exists()

    def test_login_page_renders_form_with_csrf(self):
        response = Client().get("/accounts/login/")
        assert response.status_code == 200
        assert 'name="csrfmiddlewaretoken"' in response.content.decode()

    def test_login_with_password_lands_on_list(self, team):
        team.ada.set_password("a-long-password")
        team.ada.save()
        response = Client().post("/accounts/login/", {"username": "ada", "password": "a-long-password"})
        assert (response.status_code, response["Location"]) == (302, "/")


class WorkbookListTest:
    def test_workbook_list_only_my_workbooks(self, team):
        services.create_workbook(user=team.dee, name="Dee's secret", rows=1, cols=1)
        response = client_for(team.cy).get("/")
        assert response.status_code == 200
        text = response.content.decode()
        assert "Budget" in text
        assert "secret" not in text
        assert [s.name for s in response.context["workbooks"]] == ["Budget"]

    def test_workbook_list_name_escaped(self, team):
        services.create_workbook(user=team.ada, name=XSS_NAME, rows=1, cols=1)
        text = client_for(team.ada).get("/").content.decode()
        assert "<script>alert" not in text
        assert "&lt;script&gt;alert(" in text

    def test_workbook_list_every_form_has_csrf_token(self, team):
        text = client_for(team.ada).get("/").content.decode()
        forms = re.findall(r"<form\b.*?</form>", text, flags=re.S)
        assert forms
        assert all('name="csrfmiddlewaretoken"' in form for form in forms)

    def test_workbook_list_post_not_allowed(self, team):
        assert client_for(team.ada).post("/").status_code == 405


class WorkbookCreateTest:
    def test_workbook_create_redirects_to_new_workbook_owned(self, team):
        response = client_for(team.dee).post("/workbooks/new", {"name": "Fresh"})
        workbook = Workbook.objects.get(name="Fresh")
        assert (response.status_code, response["Location"]) == (302, f"/workbooks/{workbook.pk}/")
        assert Member.objects.get(workbook=workbook).user == team.dee
        assert list(workbook.sheets.values_list("name", "row_count", "col_count")) == [("Sheet1", 100, 26)]

    def test_workbook_create_empty_name_message_nothing_created(self, team):
        response = client_for(team.dee).post("/workbooks/new", {"name": "  "}, follow=True)
        assert response.redirect_chain == [("/", 302)]
        assert page_messages(response) == ["name must be a non-empty string"]
        assert not Member.objects.filter(user=team.dee).exists()

    def test_workbook_create_get_not_allowed(self, team):
        assert client_for(team.dee).get("/workbooks/new").status_code == 405

    def test_workbook_create_past_quota_message_nothing_created(self, team, settings):
        settings.TABULA_LIMITS = {**settings.TABULA_LIMITS, "max_workbooks_per_user": 1}
        response = client_for(team.ada).post("/workbooks/new", {"name": "Second"}, follow=True)
        assert page_messages(response) == ["one person owns at most 1 workbooks; delete some first"]
        assert not Workbook.objects.filter(name="Second").exists()


class FormWriteRateTest:
    """Forms spend the same budget of writes a minute as the API: a rename or a share is a write."""

    @pytest.fixture(autouse=True)
    def two_writes_a_minute(self, settings):
        cache.clear()
        settings.TABULA_LIMITS = {**settings.TABULA_LIMITS, "http_ops_per_minute": 2}
        yield
        cache.clear()

    def test_forms_past_the_budget_message_nothing_changes(self, team):
        client = client_for(team.ada)
        for name in ("One", "Two"):
            assert page_messages(client.post(f"/workbooks/{team.workbook_id}/rename", {"name": name}, follow=True)) == ["Renamed."]
        refused = [
            client.post(f"/workbooks/{team.workbook_id}/rename", {"name": "Three"}, follow=True),
            client.post(f"/workbooks/{team.workbook_id}/share", {"username": "dee", "role": "editor"}, follow=True),
            client.post("/workbooks/new", {"name": "New"}, follow=True),
        ]
        assert [page_messages(r) for r in refused] == [["more than 2 changes a minute; slow down"]] * 3
        assert workbook_name(team.workbook_id) == "Two"
        assert not Member.objects.filter(user=team.dee).exists()
        assert client_for(team.bob).post(f"/workbooks/{team.workbook_id}/rename", {"name": "Bob's"}).status_code == 302  # a budget per user
        assert workbook_name(team.workbook_id) == "Bob's"

    def test_workbook_create_without_csrf_token_403(self, team):
        response = client_for(team.dee, enforce_csrf_checks=True).post("/workbooks/new", {"name": "Fresh"})
        assert response.status_code == 403
        assert not Workbook.objects.filter(name="Fresh").exists()


class WorkbookRenameTest:
    @pytest.mark.parametrize("user", ["ada", "bob"])
    def test_workbook_rename_writer_renames(self, team, user):
        response = client_for(getattr(team, user)).post(f"/workbooks/{team.workbook_id}/rename", {"name": "Plan"}, follow=True)
        assert response.redirect_chain == [("/", 302)]
        assert page_messages(response) == ["Renamed."]
        assert workbook_name(team.workbook_id) == "Plan"

    def test_workbook_rename_viewer_message_unchanged(self, team):
        response = client_for(team.cy).post(f"/workbooks/{team.workbook_id}/rename", {"name": "Plan"}, follow=True)
        assert page_messages(response) == ["viewers cannot change the workbook"]
        assert workbook_name(team.workbook_id) == "Budget"

    def test_workbook_rename_empty_name_message_unchanged(self, team):
        response = client_for(team.ada).post(f"/workbooks/{team.workbook_id}/rename", {"name": ""}, follow=True)
        assert page_messages(response) == ["name must be a non-empty string"]
        assert workbook_name(team.workbook_id) == "Budget"

    def test_workbook_rename_no_role_404(self, team):
        assert client_for(team.dee).post(f"/workbooks/{team.workbook_id}/rename", {"name": "Plan"}).status_code == 404
        assert workbook_name(team.workbook_id) == "Budget"


class WorkbookDeleteTest:
    def test_workbook_delete_owner_deletes(self, team):
        response = client_for(team.ada).post(f"/workbooks/{team.workbook_id}/delete", follow=True)
        assert page_messages(response) == ["Deleted."]
        assert not Workbook.objects.filter(pk=team.workbook_id).exists()

    @pytest.mark.parametrize("user", ["bob", "cy"])
    def test_workbook_delete_not_owner_message_kept(self, team, user):
        response = client_for(getattr(team, user)).post(f"/workbooks/{team.workbook_id}/delete", follow=True)
        assert page_messages(response) == ["only the owner can delete a workbook"]
        assert Workbook.objects.filter(pk=team.workbook_id).exists()

    def test_workbook_delete_no_role_404_kept(self, team):
        assert client_for(team.dee).post(f"/workbooks/{team.workbook_id}/delete").status_code == 404
        assert Workbook.objects.filter(pk=team.workbook_id).exists()

    def test_workbook_delete_get_not_allowed(self, team):
        assert client_for(team.ada).get(f"/workbooks/{team.workbook_id}/delete").status_code == 405
        assert Workbook.objects.filter(pk=team.workbook_id).exists()


def tabula_config(response) -> dict:
    match = re.search(r'<script id="tabula-config" type="application/json">(.*?)</script>', response.content.decode(), flags=re.S)
    assert match, "the workbook page carries its config as JSON"
    return json.loads(match.group(1))


class WorkbookPageTest:
    @pytest.mark.parametrize(("user", "role"), [("ada", "owner"), ("bob", "editor"), ("cy", "viewer")])
    def test_workbook_page_config_json_with_role_and_license_key(self, team, settings, user, role):
        settings.HANDSONTABLE_LICENSE_KEY = "key-from-settings"
        response = client_for(getattr(team, user)).get(f"/workbooks/{team.workbook_id}/")
        assert response.status_code == 200
        config = tabula_config(response)
        assert config["workbookId"] == team.workbook_id
        assert config["role"] == role
        assert config["licenseKey"] == "key-from-settings"
        assert config["userId"] == getattr(team, user).pk
        assert config["limits"] == {
            "maxCellsPerSet": 10_000,
            "maxValueChars": 10_000,
            "maxRows": 100_000,
            "maxCols": 1_000,
            "maxInsertCount": 10_000,
            "maxSheets": 200,
            "maxFormulaChars": 8_192,
        }
        assert ["SUM", "number1, [number2], …"] in config["functions"]  # suggested while a formula is typed

    def test_workbook_page_script_in_name_escaped(self, team):
        services.apply_operation(workbook_id=team.workbook_id, user=team.ada, operation=Rename("r", XSS_NAME))
        text = client_for(team.ada).get(f"/workbooks/{team.workbook_id}/").content.decode()
        assert "<script>alert" not in text
        assert "&lt;script&gt;alert" in text

    def test_workbook_page_preloads_every_module_main_js_imports(self, team):
        """A module missing here still loads, one round trip later; this keeps the list whole."""
        js = support.ROOT / "static" / "tabula" / "js"
        wanted, seen = {"main.js"}, set()
        while wanted - seen:
            name = (wanted - seen).pop()
            seen.add(name)
            wanted |= set(re.findall(r'^import .* from "\./([\w.]+)";', (js / name).read_text(), flags=re.M))
        text = client_for(team.ada).get(f"/workbooks/{team.workbook_id}/").content.decode()
        preloaded = set(re.findall(r'<link rel="modulepreload" href="/static/tabula/js/([\w.]+)">', text))
        assert preloaded == seen and len(seen) > 1

    def test_workbook_page_no_role_404(self, team):
        assert client_for(team.dee).get(f"/workbooks/{team.workbook_id}/").status_code == 404

    def test_workbook_page_missing_workbook_404(self, team):
        assert client_for(team.ada).get(f"/workbooks/{team.workbook_id + 1000}/").status_code == 404


class WorkbookShareTest:
    def share(self, user, workbook_id, **form):
        return client_for(user).post(f"/workbooks/{workbook_id}/share", form, follow=True)

    def test_workbook_share_owner_page_lists_members_with_csrf_forms(self, team):
        response = client_for(team.ada).get(f"/workbooks/{team.workbook_id}/share")
        assert response.status_code == 200
        assert response.context["members"] == [("ada", "owner"), ("bob", "editor"), ("cy", "viewer")]
        forms = re.findall(r"<form\b.*?</form>", response.content.decode(), flags=re.S)
        assert len(forms) >= 3  # remove bob, remove cy, add someone (and log out)
        assert all('name="csrfmiddlewaretoken"' in form for form in forms)

    def test_workbook_share_owner_adds_member(self, team):
        response = self.share(team.ada, team.workbook_id, username="dee", role="viewer")
        assert response.redirect_chain == [(f"/workbooks/{team.workbook_id}/share", 302)]
        assert page_messages(response) == ["dee is now viewer."]
        assert Member.objects.get(workbook_id=team.workbook_id, user=team.dee).role == "viewer"

    def test_workbook_share_owner_changes_role(self, team):
        self.share(team.ada, team.workbook_id, username="cy", role="editor")
        assert Member.objects.get(workbook_id=team.workbook_id, user=team.cy).role == "editor"

    def test_workbook_share_owner_removes_member(self, team):
        response = self.share(team.ada, team.workbook_id, username="bob", action="remove")
        assert page_messages(response) == ["bob removed."]
        assert not Member.objects.filter(workbook_id=team.workbook_id, user=team.bob).exists()

    @pytest.mark.parametrize(
        ("form", "message"),
        [
            ({"username": "nobody", "role": "editor"}, "no active user or member named 'nobody'"),
            ({"username": "dee", "role": "owner"}, 'role must be "editor" or "viewer"'),
            ({"username": "ada", "role": "viewer"}, "the owner's role cannot be changed"),
            ({"username": "ada", "action": "remove"}, "the owner cannot be removed"),
        ],
    )
    def test_workbook_share_owner_refused_message_nothing_changes(self, team, form, message):
        response = self.share(team.ada, team.workbook_id, **form)
        assert page_messages(response) == [message]
        assert Member.objects.filter(workbook_id=team.workbook_id).count() == 3
        assert Member.objects.get(workbook_id=team.workbook_id, user=team.ada).role == "owner"

    @pytest.mark.parametrize("user", ["bob", "cy"])
    def test_workbook_share_not_owner_sees_members_cannot_change(self, team, user):
        page = client_for(getattr(team, user)).get(f"/workbooks/{team.workbook_id}/share")
        assert page.status_code == 200
        assert "Only the owner" in page.content.decode()
        response = self.share(getattr(team, user), team.workbook_id, username="dee", role="editor")
        assert page_messages(response) == ["only the owner can share a workbook"]
        response = self.share(getattr(team, user), team.workbook_id, username="cy" if user == "bob" else "bob", action="remove")
        assert page_messages(response) == ["only the owner can share a workbook"]
        assert Member.objects.filter(workbook_id=team.workbook_id).count() == 3

    def test_workbook_share_no_role_404_nothing_changes(self, team):
        client = client_for(team.dee)
        assert client.get(f"/workbooks/{team.workbook_id}/share").status_code == 404
        assert client.post(f"/workbooks/{team.workbook_id}/share", {"username": "dee", "role": "editor"}).status_code == 404
        assert not Member.objects.filter(workbook_id=team.workbook_id, user=team.dee).exists()

    def test_workbook_share_script_in_name_escaped(self, team):
        services.apply_operation(workbook_id=team.workbook_id, user=team.ada, operation=Rename("r", XSS_NAME))
        text = client_for(team.ada).get(f"/workbooks/{team.workbook_id}/share").content.decode()
        assert "<script>alert" not in text


class LogoutTest:
    def test_logout_post_ends_session(self, team):
        client = client_for(team.ada)
        response = client.post("/accounts/logout/")
        assert (response.status_code, response["Location"]) == (302, "/accounts/login/")
        assert client.get("/")["Location"].startswith("/accounts/login/")

    def test_logout_get_not_allowed_session_kept(self, team):
        client = client_for(team.ada)
        assert client.get("/accounts/logout/").status_code == 405
        assert client.get("/").status_code == 200

    def test_logout_form_on_pages_posts_with_csrf(self, team):
        text = client_for(team.ada).get("/").content.decode()
        forms = [f for f in re.findall(r"<form\b.*?</form>", text, flags=re.S) if 'action="/accounts/logout/"' in f]
        assert len(forms) == 1
        assert 'method="post"' in forms[0] and 'name="csrfmiddlewaretoken"' in forms[0]


class ErrorPagesTest:
    """404, 403 and 500 as pages with a way back, for every path outside the API."""

    @pytest.mark.parametrize("path", ["/nothing-here/", "/workbooks/{id}/", "/workbooks/{id}/share"])
    def test_not_found_page_link_to_my_workbooks(self, team, path):
        response = client_for(team.dee).get(path.format(id=team.workbook_id))
        text = response.content.decode()
        assert response.status_code == 404
        assert response["Content-Type"].startswith("text/html")
        assert "<title>Not found · Tabula</title>" in text
        assert '<a href="/">My workbooks</a>' in text
        assert 'class="account"' in text

    def test_not_found_anonymous_page_link_to_my_workbooks(self):
        response = Client().get("/nothing-here/")
        assert response.status_code == 404
        assert '<a href="/">My workbooks</a>' in response.content.decode()

    def test_not_found_api_path_json_error_and_message(self, team):
        response = client_for(team.ada).get("/api/nothing-here/")
        assert response.status_code == 404
        assert response["Content-Type"] == "application/json"
        assert set(response.json()) == {"error", "message"}
        assert response.json()["error"] == "not_found"

    def test_permission_denied_page_link_to_my_workbooks(self, team):
        request = RequestFactory().get("/somewhere/")
        request.user = team.ada
        response = defaults.permission_denied(request, PermissionDenied())
        text = response.content.decode()
        assert response.status_code == 403
        assert "<title>Not allowed · Tabula</title>" in text
        assert '<a href="/">My workbooks</a>' in text

    @pytest.mark.parametrize(
        ("first_page", "says"),
        [(False, "did not send the cookie"), (True, "The page the form came from was out of date")],
    )
    def test_csrf_failure_page_says_why_link_to_my_workbooks_nothing_created(self, team, first_page, says):
        client = client_for(team.dee, enforce_csrf_checks=True)
        if first_page:
            client.get("/")  # sets the CSRF cookie; the form below still sends no token
        response = client.post("/workbooks/new", {"name": "Fresh"})
        text = response.content.decode()
        assert response.status_code == 403
        assert "<title>Form not sent · Tabula</title>" in text
        assert says in text
        assert '<a href="/">My workbooks</a>' in text
        assert not Workbook.objects.filter(name="Fresh").exists()

    def test_server_error_page_needs_no_context_link_home(self):
        response = defaults.server_error(RequestFactory().get("/"))
        text = response.content.decode()
        assert response.status_code == 500
        assert "Something went wrong" in text
        assert '<a href="/">My workbooks</a>' in text
