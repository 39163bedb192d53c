"""The site's login page."""

from __future__ import annotations

from django.contrib.auth import views as auth_views

from accounts.forms import LoginForm
from workbooks import sessions


class LoginView(auth_views.LoginView):
    """Django's login with the throttled form. Logging in as someone else in a browser where another
    person is logged in ends that person's login without a logout (Django flushes the session), so
    their sockets in this browser are told here, as a logout would tell them."""

    authentication_form = LoginForm

    def form_valid(self, form):
        previous = self.request.user if self.request.user.is_authenticated else None
        previous_session = self.request.session.session_key
        response = super().form_valid(form)
        if previous is not None and previous.pk != form.get_user().pk:
            sessions.tell_sockets(previous.pk, ended_session=sessions.digest(previous_session))
        return response
