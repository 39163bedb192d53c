from django.urls import path, re_path

from workbooks import api, legacy, views

urlpatterns = [
    path("", views.workbook_list, name="workbook-list"),
    path("workbooks/new", views.workbook_create, name="workbook-create"),
    path("workbooks/<int:workbook_id>/", views.workbook_page, name="workbook-page"),
    path("workbooks/<int:workbook_id>/rename", views.workbook_rename, name="workbook-rename"),
    path("workbooks/<int:workbook_id>/delete", views.workbook_delete, name="workbook-delete"),
    path("workbooks/<int:workbook_id>/share", views.workbook_share, name="workbook-share"),
    path("api/workbooks/", api.workbooks, name="api-workbooks"),
    path("api/workbooks/<int:workbook_id>/", api.workbook, name="api-workbook"),
    path("api/workbooks/<int:workbook_id>/members", api.members, name="api-members"),
    path("api/workbooks/<int:workbook_id>/members/<str:username>", api.member, name="api-member"),
    path("api/workbooks/<int:workbook_id>/changes", api.changes, name="api-changes"),
    path("api/workbooks/<int:workbook_id>/ops", api.ops, name="api-ops"),
    path("api/workbooks/<int:workbook_id>/versions", api.versions, name="api-versions"),
    path("api/workbooks/<int:workbook_id>/sheets/<int:sheet_id>/", api.sheet, name="api-sheet"),
    path("api/workbooks/<int:workbook_id>/sheets/<int:sheet_id>/cells/<int:row>/<int:col>/history", api.cell_history, name="api-cell-history"),
    # Tabula v1's paths, for pages open across the upgrade (legacy.py)
    path("sheets/<int:workbook_id>/", legacy.page),
    re_path(r"^api/sheets/(?P<rest>.*)$", legacy.api_path),
]
