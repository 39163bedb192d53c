"""The HTTP API (docs/protocol.md): JSON in and out, the same services as the socket."""

from __future__ import annotations

import functools
import uuid

from django.core.exceptions import RequestDataTooBig
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.middleware.csrf import REASON_NO_CSRF_COOKIE
from django.shortcuts import render
from django.urls import reverse
from django.views.defaults import page_not_found

from workbooks import past, protocol, rates, selectors, services
from workbooks.domain.errors import Forbidden, Invalid, NotFound, OperationError, TooLarge
from workbooks.domain.values import WRITER_ROLES
from workbooks.limits import current as current_limits

STATUS = {"invalid": 400, "forbidden": 403, "not_found": 404, "conflict": 409, "history_truncated": 410, "too_large": 413, "rate_limited": 429}


def error_response(code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse(protocol.api_error(code, message), status=status)


def csrf_failure(request, reason=""):
    """JSON for the API; for forms, a page saying why and what to do (settings.CSRF_FAILURE_VIEW)."""
    if request.path.startswith("/api/"):
        return error_response("forbidden", f"CSRF check failed: {reason}", 403)
    return render(request, "403_csrf.html", {"no_cookie": reason == REASON_NO_CSRF_COOKIE}, status=403)


def not_found(request, exception=None):
    """JSON for unknown API paths, templates/404.html elsewhere (settings.ROOT_URLCONF's handler404)."""
    if request.path.startswith("/api/"):
        return error_response("not_found", "no such endpoint (docs/protocol.md lists them)", 404)
    return page_not_found(request, exception)


def json_body(request):
    limits = current_limits()
    try:
        if int(request.headers.get("Content-Length") or 0) > limits.max_message_bytes:
            raise TooLarge(f"a request body holds at most {limits.max_message_bytes} bytes")
        body = request.body
    except RequestDataTooBig:
        raise TooLarge(f"a request body holds at most {limits.max_message_bytes} bytes") from None
    except ValueError:
        raise Invalid("bad Content-Length") from None
    return protocol.decode(body or b"{}", limits)


def api(*methods):
    """Requires a logged-in user and one of ``methods``; turns domain errors into JSON errors. Every
    request that may change something counts against the user's HTTP budget (rates.spend_write)."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return error_response("unauthenticated", "log in first (/accounts/login/)", 401)
            if request.method not in methods:
                response = error_response("method_not_allowed", f"use {', '.join(methods)}", 405)
                response["Allow"] = ", ".join(methods)
                return response
            try:
                if request.method != "GET":
                    rates.spend_write(request.user.pk)
                return view(request, *args, **kwargs)
            except OperationError as exc:
                return error_response(exc.code, exc.message, STATUS[exc.code])

        return wrapper

    return decorate


def snapshot_response(request, *, workbook_id: int, role: str, read=selectors.snapshot_rows) -> HttpResponse:
    """The snapshot, read and sent a piece at a time (under gunicorn; an ASGI server gets it whole,
    as Django would gather a streamed answer there anyway). Its first piece is read here, so a workbook
    that cannot be read fails before the answer starts. The read's transaction lasts until the answer
    is read to its end or closed, as a WSGI server always does (a test must do it too)."""

    def pieces():
        with read(workbook_id=workbook_id, role=role) as (head, row_texts):
            yield from protocol.snapshot_pieces(head, row_texts)

    body = pieces()
    first = next(body)
    if isinstance(request, ASGIRequest):
        return HttpResponse(b"".join([first, *body]), content_type="application/json")

    def answer():  # a generator, so that closing the answer closes the read (itertools.chain would not)
        yield first
        yield from body

    return StreamingHttpResponse(answer(), content_type="application/json")


def role_or_404(request, workbook_id: int) -> str:
    role = selectors.role_of(user=request.user, workbook_id=workbook_id)
    if role is None:
        raise NotFound("no such workbook")
    return role


@api("GET", "POST")
def workbooks(request):
    if request.method == "GET":
        return JsonResponse({"workbooks": [protocol.workbook_summary(s) for s in selectors.workbooks_for(user=request.user)]})
    body = json_body(request)
    snapshot = services.create_workbook(
        user=request.user, name=body.get("name"), rows=body.get("rows", 100), cols=body.get("cols", 26), sheets=body.get("sheets")
    )
    response = JsonResponse(protocol.snapshot(snapshot), status=201)  # no rows when it is big: GET them
    response["Location"] = reverse("api-workbook", args=[snapshot.id])
    return response


def _snapshot(request, workbook_id: int, *, only: int | None = None) -> HttpResponse:
    role = role_or_404(request, workbook_id)
    if "rev" in request.GET:  # the workbook as it was then
        read = functools.partial(past.snapshot_rows_at, rev=revision(request.GET["rev"], "rev"), only=only)
    else:
        read = functools.partial(selectors.snapshot_rows, only=only)
    return snapshot_response(request, workbook_id=workbook_id, role=role, read=read)


@api("GET", "PATCH", "DELETE")
def workbook(request, workbook_id):
    if request.method == "GET":
        return _snapshot(request, workbook_id)
    if request.method == "DELETE":
        services.delete_workbook(workbook_id=workbook_id, user=request.user)
        return JsonResponse({}, status=200)
    rename = protocol.parse_rename(json_body(request), current_limits(), default_op=f"rename-{uuid.uuid4().hex}")
    applied = services.apply_operation(workbook_id=workbook_id, user=request.user, operation=rename)
    return JsonResponse(protocol.change(applied.change))


@api("GET")
def members(request, workbook_id):
    role_or_404(request, workbook_id)
    return JsonResponse({"members": [{"username": u, "role": r} for u, r in selectors.members(workbook_id=workbook_id)]})


@api("PUT", "DELETE")
def member(request, workbook_id, username):
    if request.method == "DELETE":
        services.remove_member(workbook_id=workbook_id, user=request.user, username=username)
        return JsonResponse({})
    role = json_body(request).get("role")
    created = services.set_member(workbook_id=workbook_id, user=request.user, username=username, role=role)
    return JsonResponse({"username": username, "role": role}, status=201 if created else 200)


def revision(text: str, what: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise Invalid(f"{what} must be a revision number (a whole number, 0 or more)")
    return int(text)


def optional_number(request, key: str) -> int | None:
    return None if key not in request.GET else revision(request.GET[key], key)


@api("GET")
def sheet(request, workbook_id, sheet_id):
    """One sheet of the snapshot (also ``?rev=R``): the snapshot with that sheet only."""
    role_or_404(request, workbook_id)
    if "rev" not in request.GET:
        selectors.check_sheet(workbook_id=workbook_id, sheet=sheet_id)
    return _snapshot(request, workbook_id, only=sheet_id)


@api("GET")
def versions(request, workbook_id):
    role_or_404(request, workbook_id)
    found = past.versions(workbook_id=workbook_id, before=optional_number(request, "before"), limit=optional_number(request, "limit"))
    return JsonResponse(protocol.workbook_versions(found))


@api("GET")
def cell_history(request, workbook_id, sheet_id, row, col):
    role_or_404(request, workbook_id)
    before, limit = optional_number(request, "before"), optional_number(request, "limit")
    found = past.cell_history(workbook_id=workbook_id, sheet=sheet_id, row=row, col=col, before=before, limit=limit)
    return JsonResponse(protocol.cell_versions(found))


@api("GET")
def changes(request, workbook_id):
    role_or_404(request, workbook_id)
    try:
        since = int(request.GET.get("since", ""))
    except ValueError:
        raise Invalid("since must be a revision number, as in ?since=0") from None
    if since < 0:
        raise Invalid("since must be 0 or more")
    found = selectors.changes_since(workbook_id=workbook_id, since=since, limit=current_limits().max_sync_changes)
    return JsonResponse({"rev": found.rev, "changes": [protocol.change(c) for c in found.changes]})


@api("POST")
def ops(request, workbook_id):
    if role_or_404(request, workbook_id) not in WRITER_ROLES:  # before its body is read, which may be big
        raise Forbidden("viewers cannot change the workbook")
    operation = protocol.parse_operation(json_body(request), current_limits())
    applied = services.apply_operation(workbook_id=workbook_id, user=request.user, operation=operation)
    return JsonResponse(protocol.change(applied.change), status=200 if applied.duplicate else 201)
