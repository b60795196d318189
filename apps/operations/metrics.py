"""Prometheus metrics at /metrics/: requests, and the delivery engine's own.

- `postmaster_http_requests_total{method,view,status}` and
  `postmaster_http_request_duration_seconds{view}`: every request, by the URL's name (never
  its path, which may hold a token).
- `postmaster_messages_total{tenant,connection,kind,outcome}`: messages sent, failed and
  retried (apps/delivery/metrics.py), by tenant slug, connection (own, host, own-failover,
  host-failover) and kind (smtp or the provider).
- `postmaster_deliveries_queued{tenant}` and `postmaster_oldest_queued_delivery_age_seconds`:
  the queue, read from the database at each scrape (through the index of due deliveries).
- Retention's progress: `postmaster_retention_last_run_timestamp_seconds`,
  `postmaster_retention_deleted_rows{table}` (by the last run),
  `postmaster_retention_caught_up` (1: the last run finished within its budget) and
  `postmaster_oldest_delivery_age_seconds` (the oldest delivery kept, by primary key: it
  stays near DELIVERY_RETENTION_DAYS while retention keeps up).

Only for Prometheus: a request with `Authorization: Bearer <METRICS_TOKEN>`, or from an
address in METRICS_ALLOWED_IPS, gets them; anyone else a 404. Request metrics are per
process unless PROMETHEUS_MULTIPROC_DIR names a directory (docs/deploy.md).
"""

import hmac
import ipaddress
import os
import time

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Min
from django.http import Http404, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from apps.delivery.metrics import messages_totals
from apps.delivery.models import Delivery, DeliveryStatus
from apps.operations.services import RETENTION_LAST_RUN_KEY
from apps.tenancy.models import Tenant

REQUESTS = Counter(
    "postmaster_http_requests", "HTTP requests answered.", ["method", "view", "status"]
)
LATENCY = Histogram(
    "postmaster_http_request_duration_seconds", "Time to answer a request.", ["view"]
)


class RequestMetricsMiddleware:
    """First in MIDDLEWARE: counts and times every request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = match.view_name if match is not None else "unmatched"
        LATENCY.labels(view).observe(time.perf_counter() - started)
        REQUESTS.labels(request.method, view, str(response.status_code)).inc()
        return response


class EngineCollector:
    """The engine's figures, read when Prometheus scrapes."""

    def describe(self):
        # Names only: registering must not query the database.
        yield CounterMetricFamily("postmaster_messages", "", labels=[])
        yield GaugeMetricFamily("postmaster_deliveries_queued", "", labels=[])
        yield GaugeMetricFamily("postmaster_oldest_queued_delivery_age_seconds", "")
        yield GaugeMetricFamily("postmaster_retention_deleted_rows", "", labels=[])

    def collect(self):
        slugs = dict(Tenant.objects.values_list("id", "slug"))
        messages = CounterMetricFamily(
            "postmaster_messages",
            "Messages by outcome: sent, failed, or retried (a temporary failure).",
            labels=["tenant", "connection", "kind", "outcome"],
        )
        for (tenant_id, connection, kind, outcome), count in sorted(messages_totals().items()):
            tenant = slugs.get(tenant_id, str(tenant_id))
            messages.add_metric([tenant, connection, kind, outcome], count)
        yield messages

        queued = Delivery.objects.filter(status=DeliveryStatus.QUEUED)
        gauge = GaugeMetricFamily(
            "postmaster_deliveries_queued", "Deliveries waiting to be sent.", labels=["tenant"]
        )
        for tenant_id, count in queued.values_list("tenant_id").annotate(n=Count("id")):
            gauge.add_metric([slugs.get(tenant_id, str(tenant_id))], count)
        yield gauge

        oldest = queued.aggregate(oldest=Min("queued_at"))["oldest"]
        age = (timezone.now() - oldest).total_seconds() if oldest else 0.0
        yield GaugeMetricFamily(
            "postmaster_oldest_queued_delivery_age_seconds",
            "How long the oldest queued delivery has waited (0: none waits).",
            value=age,
        )
        yield from self._retention()

    def _retention(self):
        last_run = cache.get(RETENTION_LAST_RUN_KEY)
        if last_run is not None:
            yield GaugeMetricFamily(
                "postmaster_retention_last_run_timestamp_seconds",
                "When data retention last ran (Unix time).",
                value=last_run["at"],
            )
            deleted = GaugeMetricFamily(
                "postmaster_retention_deleted_rows",
                "Rows the last retention run deleted, by table.",
                labels=["table"],
            )
            for table, count in sorted(last_run["deleted"].items()):
                deleted.add_metric([table], count)
            yield deleted
            yield GaugeMetricFamily(
                "postmaster_retention_caught_up",
                "1 when the last retention run finished within its time budget.",
                value=1 if last_run["finished"] else 0,
            )
        oldest = Delivery.objects.order_by("pk").values_list("created_at", flat=True).first()
        yield GaugeMetricFamily(
            "postmaster_oldest_delivery_age_seconds",
            "Age of the oldest delivery kept (retention keeps it near its period).",
            value=(timezone.now() - oldest).total_seconds() if oldest else 0.0,
        )


ENGINE = EngineCollector()
REGISTRY.register(ENGINE)


def _registry():
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(ENGINE)
    return registry


def _allowed(request) -> bool:
    token = settings.METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(
        address in ipaddress.ip_network(allowed, strict=False)
        for allowed in settings.METRICS_ALLOWED_IPS
    )


@never_cache
@require_safe
def metrics(request):
    """Prometheus' scrape endpoint; a 404 for anyone not allowed (it does not exist for them)."""
    if not _allowed(request):
        raise Http404
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
