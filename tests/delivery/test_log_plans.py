"""The delivery log's queries use an index on PostgreSQL: a page costs the same at any size.

A few thousand deliveries in two tenants (the other one much larger), the
statistics refreshed, then PostgreSQL's own plan of each query the log's
pages run (first page, an older page by cursor, each filter, the capped
count) must name an index and never read the whole deliveries table.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.core.keyset import COUNT_CAP, capped_count, keyset_paginate
from apps.delivery.models import Delivery, DeliveryStatus
from apps.delivery.resolution import _suppressed
from apps.delivery.selectors import delivery_list
from apps.groups.models import UserGroupMember
from apps.preferences.models import Suppression, SuppressionReason
from tests.delivery.log_records import make_event, make_pipeline

pytestmark = [pytest.mark.services, pytest.mark.django_db]

STATUSES = [DeliveryStatus.SENT] * 8 + [DeliveryStatus.FAILED, DeliveryStatus.QUEUED]


def _fill(tenant, pipeline, count: int, *, prefix: str) -> None:
    now = timezone.now()
    events = [make_event(pipeline, run_id=f"{prefix}-{n}") for n in range(20)]
    Delivery.objects.bulk_create(
        (
            Delivery(
                tenant=tenant,
                event=events[n % len(events)],
                address=f"{prefix}.person{n}@example{n % 50}.com",
                reason="A rule",
                status=STATUSES[n % len(STATUSES)],
                message_id=f"<{prefix}.{n}@postmaster.test>",
            )
            for n in range(count)
        ),
        batch_size=2000,
    )
    # Spread over 30 days, newest last.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE delivery_delivery SET created_at = %s - (id %% 43200) * interval '1 minute'"
            " WHERE tenant_id = %s",
            [now, tenant.pk],
        )


@pytest.fixture
def big_log(tenant, other_tenant):
    ours = make_pipeline(tenant)
    _fill(tenant, ours, 3000, prefix="ours")
    _fill(other_tenant, make_pipeline(other_tenant), 12000, prefix="theirs")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE delivery_delivery")
        cursor.execute("ANALYZE delivery_event")
    return ours


def _plan(sql: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


def _page_queries(queryset, cursor=None, **options) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        page = keyset_paginate(queryset, cursor, **options)
    return page, [q["sql"] for q in queries.captured_queries]


def _assert_indexed(sql: str, index: str | None = None) -> None:
    plan = _plan(sql)
    assert "Seq Scan on delivery_delivery" not in plan, plan
    if index:
        assert index in plan, plan


def test_the_first_page_and_an_older_one_read_the_recent_index(tenant, big_log):
    page, first = _page_queries(delivery_list(tenant=tenant))
    assert len(page.object_list) == 50
    _assert_indexed(first[0], "delivery_recent")

    _, older = _page_queries(delivery_list(tenant=tenant), page.next_cursor)
    assert "< (" in older[0] or "<(" in older[0]  # one row comparison, (created_at, id) < (…)
    _assert_indexed(older[0], "delivery_recent")


def test_a_status_filter_reads_the_status_index(tenant, big_log):
    _, queries = _page_queries(delivery_list(tenant=tenant, status=DeliveryStatus.FAILED))
    _assert_indexed(queries[0], "delivery_status_recent")


def test_a_day_filter_reads_the_recent_index(tenant, big_log):
    day = timezone.localdate() - timedelta(days=3)
    _, queries = _page_queries(delivery_list(tenant=tenant, date_from=day, date_to=day))
    _assert_indexed(queries[0], "delivery_recent")


@pytest.mark.parametrize("recipient", ["ours.person1234@example34.com", "person12", "ample7"])
def test_a_recipient_search_uses_an_index(tenant, big_log, recipient):
    page, queries = _page_queries(delivery_list(tenant=tenant, recipient=recipient))
    assert page.object_list
    _assert_indexed(queries[0])


def test_a_rare_recipient_search_reads_the_trigram_index(tenant, big_log):
    # The whole table holds one such address: the trigram index finds it at once.
    _, queries = _page_queries(delivery_list(tenant=tenant, recipient="person1234@example34"))
    _assert_indexed(queries[0], "delivery_address_trgm")


def test_a_pipeline_filter_does_not_read_the_whole_table(tenant, big_log):
    _, queries = _page_queries(delivery_list(tenant=tenant, pipeline=big_log))
    _assert_indexed(queries[0])


def test_the_capped_count_reads_at_most_the_cap(tenant, big_log):
    with CaptureQueriesContext(connection) as queries:
        n = capped_count(delivery_list(tenant=tenant))
    assert n == COUNT_CAP + 1
    sql = queries.captured_queries[0]["sql"]
    assert f"LIMIT {COUNT_CAP + 1}" in sql
    # At this size a scan that stops after cap + 1 rows is as good; the Limit bounds it.
    plan = _plan(sql)
    assert plan.splitlines()[1].strip().startswith("->  Limit"), plan


def test_the_suppression_lookup_reads_its_unique_index(tenant, big_log):
    Suppression.objects.bulk_create(
        Suppression(tenant=tenant, address=f"gone{n}@example.com", reason=SuppressionReason.REFUSED)
        for n in range(3000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE preferences_suppression")
    event = make_event(big_log)

    class Expansion:
        typed = {"gone7@example.com", "someone@example.com"}
        members = UserGroupMember.objects.filter(group__tenant=tenant)

    with CaptureQueriesContext(connection) as queries:
        found = _suppressed(event, Expansion)
    assert list(found) == ["gone7@example.com"]
    sql = next(q["sql"] for q in queries.captured_queries if "preferences_suppression" in q["sql"])
    # The members' addresses are lowered (accounts keep their case); the list's column is not.
    assert 'LOWER("PREFERENCES_SUPPRESSION"' not in sql.upper()
    plan = _plan(sql)
    assert "Seq Scan on preferences_suppression" not in plan, plan
    assert "preferences_suppression_unique" in plan, plan
