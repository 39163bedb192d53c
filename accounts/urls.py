"""Django's account pages (login, logout, password change and reset), the login with the throttled form."""

from django.contrib.auth.views import LoginView
from django.urls import include, path

from accounts.forms import LoginForm

urlpatterns = [
    path("login/", LoginView.as_view(authentication_form=LoginForm), name="login"),
    path("", include("django.contrib.auth.urls")),
]
