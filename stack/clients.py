"""A script's client of the stack: an HTTP session logged in as one user."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar


class HttpSession:
    """A script's view of the API: logs in through /accounts/login/ and reuses the session cookie."""

    def __init__(self, base_url: str, *, ssl_context=None):
        self.base_url = base_url.rstrip("/")
        self.jar = CookieJar()
        handlers = [urllib.request.HTTPCookieProcessor(self.jar)]
        if ssl_context is not None:
            handlers.append(urllib.request.HTTPSHandler(context=ssl_context))
        self.opener = urllib.request.build_opener(*handlers)

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)

    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)

    def login(self, username: str, password: str) -> HttpSession:
        page = self.opener.open(f"{self.base_url}/accounts/login/", timeout=30).read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        form = urllib.parse.urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token}).encode()
        request = urllib.request.Request(f"{self.base_url}/accounts/login/", data=form, headers={"Referer": f"{self.base_url}/accounts/login/"})
        self.opener.open(request, timeout=30)
        if not self.cookie("sessionid"):
            raise RuntimeError(f"login as {username} failed")
        return self

    def request(self, method: str, path: str, body=None) -> tuple[int, dict]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "X-CSRFToken": self.cookie("csrftoken") or "", "Referer": self.base_url + "/"}
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            with self.opener.open(request, timeout=60) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")
