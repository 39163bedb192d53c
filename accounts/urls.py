"""Django's account pages (login, logout, password change and reset), the login with the throttled form."""

from django.urls import include, path

from accounts.views import LoginView

urlpatterns = [
    path("login/", LoginView.as_view(), name="login"),
    path("", include("django.contrib.auth.urls")),
]
