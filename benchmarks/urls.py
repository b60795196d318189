"""Postmaster's URLs, and a bare JSON view to compare the events API with on the same server."""

import json

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from config.urls import urlpatterns as postmaster_urls


@csrf_exempt
def bare(request: HttpRequest) -> JsonResponse:
    """What the events API does at the least: read a JSON body, answer 202 in JSON."""
    body = json.loads(request.body or b"{}")
    return JsonResponse({"id": 1, "fields": len(body)}, status=202)


urlpatterns = [*postmaster_urls, path("bench/bare", bare, name="bench_bare")]
