"""The pages: my workbooks, one workbook, sharing. Forms post here; the grid itself talks to the API and socket."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from workbooks import protocol, rates, selectors, services
from workbooks.domain.errors import OperationError
from workbooks.domain.formulas.catalogue import catalogue
from workbooks.limits import current as current_limits


def _role_or_404(request, workbook_id):
    role = selectors.role_of(user=request.user, workbook_id=workbook_id)
    if role is None:
        raise Http404("no such workbook")
    return role


def _form_action(request, action, success):
    """Runs a service call for a form; a refusal becomes a message, never a crash."""
    try:
        rates.spend_write(request.user.pk)
        action()
        messages.success(request, success)
    except OperationError as exc:
        messages.error(request, getattr(exc, "message", str(exc)))


@login_required
@require_GET
def workbook_list(request):
    return render(request, "workbooks/list.html", {"workbooks": selectors.workbooks_for(user=request.user)})


@login_required
@require_POST
def workbook_create(request):
    try:
        rates.spend_write(request.user.pk)
        snapshot = services.create_workbook(user=request.user, name=request.POST.get("name", ""))
    except OperationError as exc:
        messages.error(request, exc.message)
        return redirect("workbook-list")
    return redirect("workbook-page", workbook_id=snapshot.id)


@login_required
@require_POST
def workbook_rename(request, workbook_id):
    _role_or_404(request, workbook_id)

    def rename():
        operation = protocol.parse_rename({"name": request.POST.get("name", "")}, current_limits(), default_op=f"rename-{uuid.uuid4().hex}")
        services.apply_operation(workbook_id=workbook_id, user=request.user, operation=operation)

    _form_action(request, rename, "Renamed.")
    return redirect("workbook-list")


@login_required
@require_POST
def workbook_delete(request, workbook_id):
    _role_or_404(request, workbook_id)
    _form_action(request, lambda: services.delete_workbook(workbook_id=workbook_id, user=request.user), "Deleted.")
    return redirect("workbook-list")


@login_required
@require_GET
def workbook_page(request, workbook_id):
    role = _role_or_404(request, workbook_id)
    name = selectors.workbook_name(workbook_id=workbook_id)
    limits = current_limits()
    config = {
        "workbookId": workbook_id,
        "userId": request.user.pk,  # whose waiting edits the page keeps in the browser's storage
        "role": role,
        "licenseKey": settings.HANDSONTABLE_LICENSE_KEY,
        "limits": {
            "maxCellsPerSet": limits.max_cells_per_set,
            "maxValueChars": limits.max_value_chars,
            "maxRows": limits.max_rows,
            "maxCols": limits.max_cols,
            "maxInsertCount": limits.max_insert_count,
            "maxSheets": limits.max_sheets,
            "maxFormulaChars": limits.max_formula_chars,
        },
        "functions": catalogue(),  # suggested while a formula is typed
    }
    return render(request, "workbooks/workbook.html", {"workbook_id": workbook_id, "name": name, "role": role, "config": config})


@login_required
def workbook_share(request, workbook_id):
    role = _role_or_404(request, workbook_id)
    if request.method == "POST":
        username = request.POST.get("username", "").strip()
        if request.POST.get("action") == "remove":
            _form_action(
                request, lambda: services.remove_member(workbook_id=workbook_id, user=request.user, username=username), f"{username} removed."
            )
        else:
            new_role = request.POST.get("role")
            _form_action(
                request,
                lambda: services.set_member(workbook_id=workbook_id, user=request.user, username=username, role=new_role),
                f"{username} is now {new_role}.",
            )
        return redirect("workbook-share", workbook_id=workbook_id)
    name = selectors.workbook_name(workbook_id=workbook_id)
    return render(
        request,
        "workbooks/share.html",
        {"workbook_id": workbook_id, "name": name, "role": role, "members": selectors.members(workbook_id=workbook_id)},
    )
