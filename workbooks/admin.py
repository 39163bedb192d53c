"""The admin site: workbooks, their members and the change log.

Every edit of a workbook or a membership goes through workbooks/services/, made by the staff user with
the owner's rights (``as_admin``) and under every other rule (the owner's role stays, a role is
editor or viewer and only for an active user): logged, broadcast, and the sockets concerned told,
as when the owner makes it. A workbook is created by its owner only (its rows and columns with it).
The change log is read-only. A user deactivated, deleted or given a new password on the user pages
closes that user's sockets through the signals in workbooks/sessions.py.
"""

from __future__ import annotations

import functools
import uuid

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction

from workbooks import protocol, services
from workbooks.domain.errors import OperationError
from workbooks.domain.values import Rename
from workbooks.limits import current as current_limits
from workbooks.models import Change, Member, Sheet, Workbook

GIVEN_ROLES = [(role.value, role.label) for role in (Member.Role.EDITOR, Member.Role.VIEWER)]


def as_admin(request, action, **kwargs) -> bool:
    """One service call made by the admin user; a refusal becomes an error message on the page."""
    try:
        action(user=request.user, as_admin=True, **kwargs)
    except OperationError as exc:
        messages.error(request, getattr(exc, "message", str(exc)))
        return False
    return True


class MemberForm(forms.ModelForm):
    """A membership's workbook and user are fixed once it exists (take the role away and give a new one),
    and so is the owner's role; the role given is editor or viewer, to an active user."""

    class Meta:
        model = Member
        fields = ["workbook", "user", "role"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        existing = self.instance.pk is not None
        for name in ("workbook", "user"):
            if existing and name in self.fields:
                self.fields[name].disabled = True
        if existing and self.instance.role == Member.Role.OWNER:
            self.fields["role"].disabled = True
        else:
            self.fields["role"].choices = GIVEN_ROLES

    def clean_user(self):
        user = self.cleaned_data["user"]
        if self.instance.pk is None and not user.is_active:
            raise ValidationError("Only an active user can be given a role.")
        return user


class MemberFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        if any(form.instance.role == Member.Role.OWNER for form in self.deleted_forms if form.instance.pk is not None):
            raise ValidationError("The owner's role cannot be taken away (delete the workbook instead).")


class MemberInline(admin.TabularInline):
    model = Member
    form = MemberForm
    formset = MemberFormSet
    fields = ["user", "role"]
    extra = 0
    autocomplete_fields = ["user"]


class WorkbookForm(forms.ModelForm):
    class Meta:
        model = Workbook
        fields = ["name"]

    def clean_name(self):
        try:
            return protocol.workbook_name(self.cleaned_data["name"], current_limits())
        except OperationError as exc:
            raise ValidationError(exc.message) from None


@admin.register(Workbook)
class WorkbookAdmin(admin.ModelAdmin):
    form = WorkbookForm
    list_display = ["id", "name", "rev", "sheet_names", "updated_at"]
    search_fields = ["name"]
    readonly_fields = ["rev", "sheet_names", "sheets_issued", "rows_issued", "cols_issued", "history_floor", "created_at", "updated_at"]
    inlines = [MemberInline]

    @admin.display(description="sheets")
    def sheet_names(self, obj):
        return ", ".join(obj.sheets.filter(deleted_rev__isnull=True).order_by("position").values_list("name", flat=True))

    def has_add_permission(self, request):
        return False  # its owner creates a workbook, with its rows and columns (services.create_workbook)

    def save_model(self, request, obj, form, change):
        """A new name is a rename operation, at the workbook's next revision. apply_operation broadcasts as
        soon as it has committed, so it runs once the admin's own transaction has committed."""
        if "name" in form.changed_data:
            transaction.on_commit(functools.partial(self.rename, request, obj.pk, form.cleaned_data["name"]))

    def rename(self, request, workbook_id: int, name: str) -> None:
        operation = Rename(f"admin-rename-{uuid.uuid4().hex}", name)
        as_admin(request, services.apply_operation, workbook_id=workbook_id, operation=operation)

    def save_formset(self, request, form, formset, change):
        if formset.model is not Member:
            super().save_formset(request, form, formset, change)
            return
        formset.save(commit=False)  # what changed, nothing saved: the services do that
        for member in formset.deleted_objects:
            as_admin(request, services.remove_member, workbook_id=member.workbook_id, username=member.user.get_username())
        for member in [*formset.new_objects, *(member for member, _ in formset.changed_objects)]:
            as_admin(request, services.set_member, workbook_id=member.workbook_id, username=member.user.get_username(), role=member.role)

    def delete_model(self, request, obj):
        as_admin(request, services.delete_workbook, workbook_id=obj.pk)

    def delete_queryset(self, request, queryset):
        for workbook_id in queryset.values_list("pk", flat=True):
            as_admin(request, services.delete_workbook, workbook_id=workbook_id)

    def get_deleted_objects(self, objs, request):
        """What the confirmation page lists: each workbook with the size of what goes with it, rather than
        every row, column and change (a workbook may hold 100,000 rows)."""
        workbooks = list(objs)
        ids = [workbook.pk for workbook in workbooks]
        sizes = {}
        for workbook_id, rows, cols in Sheet.objects.filter(workbook_id__in=ids, deleted_rev__isnull=True).values_list(
            "workbook_id", "row_count", "col_count"
        ):
            sheets, cells = sizes.get(workbook_id, (0, 0))
            sizes[workbook_id] = (sheets + 1, cells + rows * cols)
        listed = []
        for w in workbooks:
            count, cells = sizes.get(w.pk, (0, 0))
            listed.append(f"Workbook: {w.name} ({count} sheet{'' if count == 1 else 's'}, {cells:,} cells)")
        counts = {
            "workbooks": len(workbooks),
            "members": Member.objects.filter(workbook_id__in=ids).count(),
            "changes": Change.objects.filter(workbook_id__in=ids).count(),
        }
        return listed, counts, set(), []


@admin.register(Member)
class MemberAdmin(admin.ModelAdmin):
    form = MemberForm
    list_display = ["workbook", "user", "role"]
    list_filter = ["role"]
    search_fields = ["workbook__name", "user__username"]
    autocomplete_fields = ["workbook", "user"]

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (obj is None or obj.role != Member.Role.OWNER)

    def save_model(self, request, obj, form, change):
        if change and "role" not in form.changed_data:
            return
        username = obj.user.get_username()
        if as_admin(request, services.set_member, workbook_id=obj.workbook_id, username=username, role=obj.role) and not change:
            obj.pk = Member.objects.filter(workbook_id=obj.workbook_id, user=obj.user).values_list("pk", flat=True).first()

    def delete_model(self, request, obj):
        as_admin(request, services.remove_member, workbook_id=obj.workbook_id, username=obj.user.get_username())

    def delete_queryset(self, request, queryset):
        for member in queryset.select_related("user"):
            as_admin(request, services.remove_member, workbook_id=member.workbook_id, username=member.user.get_username())


@admin.register(Change)
class ChangeAdmin(admin.ModelAdmin):
    """The history, read-only: changes are made only through the service layer."""

    list_display = ["workbook", "rev", "kind", "author_name", "at", "op"]
    list_filter = ["kind"]
    search_fields = ["workbook__name", "author_name", "op"]
    ordering = ["workbook", "-rev"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
