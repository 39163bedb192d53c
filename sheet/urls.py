from django.urls import path

from sheet import api, views

urlpatterns = [
    path("", views.sheet_list, name="sheet-list"),
    path("sheets/new", views.sheet_create, name="sheet-create"),
    path("sheets/<int:sheet_id>/", views.sheet_page, name="sheet-page"),
    path("sheets/<int:sheet_id>/rename", views.sheet_rename, name="sheet-rename"),
    path("sheets/<int:sheet_id>/delete", views.sheet_delete, name="sheet-delete"),
    path("sheets/<int:sheet_id>/share", views.sheet_share, name="sheet-share"),
    path("api/sheets/", api.sheets, name="api-sheets"),
    path("api/sheets/<int:sheet_id>/", api.sheet, name="api-sheet"),
    path("api/sheets/<int:sheet_id>/members", api.members, name="api-members"),
    path("api/sheets/<int:sheet_id>/members/<str:username>", api.member, name="api-member"),
    path("api/sheets/<int:sheet_id>/changes", api.changes, name="api-changes"),
    path("api/sheets/<int:sheet_id>/ops", api.ops, name="api-ops"),
    path("api/sheets/<int:sheet_id>/versions", api.versions, name="api-versions"),
    path("api/sheets/<int:sheet_id>/cells/<int:row>/<int:col>/history", api.cell_history, name="api-cell-history"),
]
