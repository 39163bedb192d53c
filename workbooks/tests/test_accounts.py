"""Account pages, through the test client: the account menu, changing a password, resetting a forgotten one by mail."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from model_bakery import baker

pytestmark = pytest.mark.django_db

OLD = "an-old-long-password"
NEW = "a-brand-new-passphrase"


@pytest.fixture
def ada():
    user = baker.make(get_user_model(), username="ada", email="ada@example.com")
    user.set_password(OLD)
    user.save()
    return user


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def can_log_in(username: str, password: str) -> bool:
    return Client().login(username=username, password=password)


def reset_link(mail) -> str:
    """The confirmation link in a reset mail, as a path."""
    found = re.findall(r"http://testserver(/accounts/reset/\S+/)", mail.body)
    assert len(found) == 1, mail.body
    return found[0]


class AccountMenuTest:
    def test_account_menu_logged_in_username_change_password_and_log_out(self, ada):
        text = logged_in(ada).get("/").content.decode()
        menu = re.search(r'<details class="account">.*?</details>', text, flags=re.S).group(0)
        assert ">ada<" in menu
        assert 'href="/accounts/password_change/"' in menu
        assert 'action="/accounts/logout/"' in menu

    def test_account_menu_anonymous_not_shown(self):
        assert 'class="account"' not in Client().get("/accounts/login/").content.decode()

    def test_login_page_links_to_password_reset(self):
        text = Client().get("/accounts/login/").content.decode()
        assert '<a href="/accounts/password_reset/">Forgot your password?</a>' in text


class PasswordChangeTest:
    def test_password_change_anonymous_redirected_to_login(self):
        response = Client().get("/accounts/password_change/")
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")

    def test_password_change_form_asks_old_and_new_twice_with_rules(self, ada):
        response = logged_in(ada).get("/accounts/password_change/")
        text = response.content.decode()
        assert response.status_code == 200
        for name in ("old_password", "new_password1", "new_password2", "csrfmiddlewaretoken"):
            assert f'name="{name}"' in text
        assert "at least 8 characters" in text

    def test_password_change_right_old_password_changed_still_logged_in(self, ada):
        client = logged_in(ada)
        response = client.post("/accounts/password_change/", {"old_password": OLD, "new_password1": NEW, "new_password2": NEW})
        assert (response.status_code, response["Location"]) == (302, "/accounts/password_change/done/")
        assert "Password changed" in client.get(response["Location"]).content.decode()
        assert client.get("/").status_code == 200
        assert can_log_in("ada", NEW)
        assert not can_log_in("ada", OLD)

    def test_password_change_other_sessions_logged_out(self, ada):
        elsewhere = logged_in(ada)
        logged_in(ada).post("/accounts/password_change/", {"old_password": OLD, "new_password1": NEW, "new_password2": NEW})
        assert elsewhere.get("/")["Location"].startswith("/accounts/login/")

    @pytest.mark.parametrize(
        ("form", "error"),
        [
            ({"old_password": "wrong-password", "new_password1": NEW, "new_password2": NEW}, "Your old password was entered incorrectly"),
            ({"old_password": OLD, "new_password1": NEW, "new_password2": NEW + "x"}, "The two password fields didn"),
            ({"old_password": OLD, "new_password1": "12345678", "new_password2": "12345678"}, "This password is entirely numeric"),
        ],
    )
    def test_password_change_refused_error_shown_password_unchanged(self, ada, form, error):
        response = logged_in(ada).post("/accounts/password_change/", form)
        assert response.status_code == 200
        assert error in response.content.decode()
        assert can_log_in("ada", OLD)


class PasswordResetTest:
    def test_password_reset_mail_link_sets_password_that_logs_in(self, ada, mailoutbox, settings):
        client = Client()
        response = client.post("/accounts/password_reset/", {"email": "ada@example.com"})
        assert (response.status_code, response["Location"]) == (302, "/accounts/password_reset/done/")
        assert "Check your email" in client.get(response["Location"]).content.decode()

        assert len(mailoutbox) == 1
        mail = mailoutbox[0]
        assert (mail.to, mail.from_email, mail.subject) == (["ada@example.com"], settings.DEFAULT_FROM_EMAIL, "Reset your Tabula password")
        assert "ada" in mail.body

        # Django trades the token in the link for one kept in the session, then shows the form.
        form_page = client.get(reset_link(mail), follow=True)
        assert "Choose a new password" in form_page.content.decode()
        response = client.post(form_page.redirect_chain[-1][0], {"new_password1": NEW, "new_password2": NEW})
        assert (response.status_code, response["Location"]) == (302, "/accounts/reset/done/")
        assert "Password set" in client.get(response["Location"]).content.decode()

        assert can_log_in("ada", NEW)
        assert not can_log_in("ada", OLD)

    def test_password_reset_link_used_once_then_refused(self, ada, mailoutbox):
        client = Client()
        client.post("/accounts/password_reset/", {"email": "ada@example.com"})
        link = reset_link(mailoutbox[0])
        form_page = client.get(link, follow=True)
        client.post(form_page.redirect_chain[-1][0], {"new_password1": NEW, "new_password2": NEW})

        again = Client().get(link, follow=True).content.decode()
        assert "This link no longer works" in again
        assert 'href="/accounts/password_reset/"' in again
        assert can_log_in("ada", NEW)

    def test_password_reset_unknown_email_same_answer_no_mail(self, ada, mailoutbox):
        response = Client().post("/accounts/password_reset/", {"email": "nobody@example.com"})
        assert (response.status_code, response["Location"]) == (302, "/accounts/password_reset/done/")
        assert mailoutbox == []

    def test_password_reset_weak_password_refused_old_one_kept(self, ada, mailoutbox):
        client = Client()
        client.post("/accounts/password_reset/", {"email": "ada@example.com"})
        form_page = client.get(reset_link(mailoutbox[0]), follow=True)
        response = client.post(form_page.redirect_chain[-1][0], {"new_password1": "password", "new_password2": "password"})
        assert response.status_code == 200
        assert "This password is too common" in response.content.decode()
        assert can_log_in("ada", OLD)
