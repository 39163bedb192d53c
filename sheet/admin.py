from django.contrib import admin

from sheet.models import Change, Member, Sheet


class MemberInline(admin.TabularInline):
    model = Member
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Sheet)
class SheetAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "rev", "row_count", "col_count", "updated_at"]
    search_fields = ["name"]
    readonly_fields = ["rev", "rows_issued", "cols_issued", "row_count", "col_count", "history_floor", "created_at", "updated_at"]
    inlines = [MemberInline]


@admin.register(Member)
class MemberAdmin(admin.ModelAdmin):
    list_display = ["sheet", "user", "role"]
    list_filter = ["role"]
    search_fields = ["sheet__name", "user__username"]
    autocomplete_fields = ["user"]


@admin.register(Change)
class ChangeAdmin(admin.ModelAdmin):
    """The history, read-only: changes are made only through the service layer."""

    list_display = ["sheet", "rev", "kind", "author_name", "at", "op"]
    list_filter = ["kind"]
    search_fields = ["sheet__name", "author_name", "op"]
    ordering = ["sheet", "-rev"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
