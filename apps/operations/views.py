from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from apps.operations.health import health_report


@never_cache
@require_safe
def health(request):
    """JSON for load balancers and monitoring: 200 when every required check passes, else 503."""
    healthy, body = health_report()
    return JsonResponse(body, status=200 if healthy else 503)
