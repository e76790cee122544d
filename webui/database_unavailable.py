"""The pages' answer while the database cannot be reached: a 503 page that says so, with ``Retry-After``.

A page needs the database for its session and user before it shows anything, so any page may meet an
unreachable database; without this it would be a 500 page. Paths under /api/ answer JSON instead
(``api.errors``). The page is rendered without the request: it must not need the database itself.
"""

from __future__ import annotations

from django.http import HttpResponse
from django.template.loader import render_to_string

from api.errors import API_PREFIX, DATABASE_RETRY_AFTER_S, database_unavailable, log_database_unavailable


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if request.path.startswith(API_PREFIX) or not database_unavailable(exception):
            return None
        log_database_unavailable(request, exception)
        page = render_to_string("webui/database_unavailable.html", {"retry_after": DATABASE_RETRY_AFTER_S})
        response = HttpResponse(page, status=503)
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
        return response
