"""Project-wide request and response rules: text Tabula never stores is refused at the door, and
every response says how it may be cached and what the page may load."""

from __future__ import annotations

from django.http import JsonResponse
from django.shortcuts import render
from django.utils.cache import patch_cache_control

from workbooks.protocol import api_error, bad_text

# The pages load scripts, styles, images and fonts from this site only, talk only to it (its socket
# included: 'self' covers ws: and wss: to the same host), and run no inline script or style. The one
# hash is an empty <style>'s: the workbook page adds one so that Handsontable does not inline the CSS
# the page links (static/tabula/js/grid.js, standInForCoreStyles).
EMPTY_STYLE = "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        f"style-src 'self' {EMPTY_STYLE}",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def refuse_bad_text(get_response):
    """Answers 400 to a request whose path, query or form fields hold U+0000 or a lone surrogate (a
    JSON body is checked where it is decoded, workbooks.protocol.decode). Such text reached PostgreSQL,
    which cannot store it, and the JSON encoder, which cannot write it: a 500 for the sender, and
    within a batch a failure for others."""

    def middleware(request):
        fields = [request.path_info, *request.GET.keys(), *(v for values in request.GET.lists() for v in values[1])]
        if request.method == "POST" and request.content_type in FORM_TYPES:
            fields += [*request.POST.keys(), *(v for values in request.POST.lists() for v in values[1])]
        problem = next(filter(None, map(bad_text, fields)), None)
        if problem is None:
            return get_response(request)
        if request.path_info.startswith("/api/"):
            return JsonResponse(api_error("invalid", problem), status=400)
        return render(request, "400.html", {"problem": problem}, status=400)

    return middleware


def security_headers(get_response):
    """Content-Security-Policy on every response, and ``Cache-Control: no-store, private`` on every
    response that did not say otherwise: pages and API answers hold workbook data, which no shared
    cache (nor the browser's back button after a logout) should keep."""

    def middleware(request):
        response = get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        if "Cache-Control" not in response.headers:
            patch_cache_control(response, no_store=True, private=True)
        return response

    return middleware
