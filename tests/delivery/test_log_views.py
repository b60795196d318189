"""The delivery log in the tenant portal: the log, an event's page and progress, resend, the chart.

Who may open each page (and that nobody else changes anything) is the
isolation matrix's job: tests/tenancy/test_isolation.py.
"""

import re
from datetime import timedelta

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditEntry
from apps.delivery.models import Delivery, DeliveryStatus
from apps.pipelines.models import EventType
from tests.delivery.log_records import make_attempts, make_deliveries, make_event, make_pipeline
from tests.keyset import capture, follow, link, unbounded_counts

SENT, FAILED, QUEUED = DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.QUEUED
# Session, user, membership and tenant, then the page's own reads.
MAX_QUERIES = 8


@pytest.fixture
def event(deploy_prod):
    """Payments / Deploy prod failed (the pipeline comes from tests/delivery/conftest.py)."""
    return make_event(deploy_prod)


@pytest.fixture
def portal(client, tenant_admin):
    client.force_login(tenant_admin)
    return client


def url(name, tenant, *args, **query):
    path = reverse(f"tenancy:delivery:{name}", args=[tenant.slug, *args])
    if query:
        path += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    return path


def shown(response) -> list[str]:
    return [d.address for d in response.context["page"].object_list]


def statuses(deliveries) -> list[str]:
    return list(
        Delivery.objects.filter(pk__in=[d.pk for d in deliveries])
        .order_by("pk")
        .values_list("status", flat=True)
    )


# The log -----------------------------------------------------------------------


def test_the_log_shows_each_delivery_with_what_the_server_answered(portal, tenant, event):
    make_deliveries(event, FAILED, 1, prefix="refused", attempt_count=1)
    make_deliveries(event, SENT, 1, prefix="fine", last_code=250, last_reply="2.0.0 Ok: queued")

    page = portal.get(url("log", tenant)).content.decode()

    assert "refused0@example.com" in page
    assert "fine0@example.com" in page
    assert '<span class="badge text-bg-danger">Failed</span>' in page
    assert '<span class="badge text-bg-success">Sent</span>' in page
    assert "<code>550</code> 5.1.1 User unknown" in page
    assert "Payments / Deploy prod" in page
    assert reverse("tenancy:delivery:event_detail", args=[tenant.slug, event.pk]) in page
    # "Send again" is offered for the failed delivery only.
    assert page.count("Send again") == 1


def test_a_long_server_reply_is_cut_in_the_row_and_whole_on_hover(portal, tenant, event):
    reply = "4.7.0 " + "x" * 200
    make_deliveries(event, FAILED, 1, last_code=451, last_reply=reply)

    page = portal.get(url("log", tenant)).content.decode()

    assert f'title="{reply}"' in page
    assert reply not in page.replace(f'title="{reply}"', "")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status": "failed"}, {"failed0@example.com"}),
        ({"recipient": "NIGHT"}, {"nightly0@example.com"}),
        (
            {"status": "sent", "recipient": "example.com"},
            {"sent0@example.com", "nightly0@example.com"},
        ),
    ],
)
def test_filters_narrow_the_log(portal, tenant, event, query, expected):
    make_deliveries(event, FAILED, 1, prefix="failed")
    make_deliveries(event, SENT, 1, prefix="sent")
    nightly = make_event(make_pipeline(tenant, name="Nightly", project="Website"))
    make_deliveries(nightly, SENT, 1, prefix="nightly")

    assert set(shown(portal.get(url("log", tenant, **query)))) == expected


def test_filter_by_pipeline_event_and_dates(portal, tenant, deploy_prod, event):
    make_deliveries(event, SENT, 1, prefix="ours")
    older = make_event(deploy_prod, run_id="4710")
    make_deliveries(older, SENT, 1, prefix="older", created_at=timezone.now() - timedelta(days=3))
    nightly = make_event(make_pipeline(tenant, name="Nightly", project="Website"))
    make_deliveries(nightly, SENT, 1, prefix="nightly")
    today = timezone.localdate()

    assert set(shown(portal.get(url("log", tenant, pipeline=deploy_prod.pk)))) == {
        "ours0@example.com",
        "older0@example.com",
    }
    assert shown(portal.get(url("log", tenant, event=older.pk))) == ["older0@example.com"]
    last_week = {"date_from": today - timedelta(days=7), "date_to": today - timedelta(days=1)}
    assert shown(portal.get(url("log", tenant, **last_week))) == ["older0@example.com"]


def test_a_wrong_filter_is_said_and_the_right_ones_still_apply(portal, tenant, event):
    make_deliveries(event, FAILED, 1, prefix="failed")
    make_deliveries(event, SENT, 1, prefix="sent")
    today = timezone.localdate()

    response = portal.get(
        url("log", tenant, status="failed", date_from=today, date_to=today - timedelta(days=1))
    )

    assert response.status_code == 200
    assert "swap the dates" in response.content.decode()
    assert shown(response) == ["failed0@example.com"]


def test_another_tenants_pipeline_is_not_a_choice(portal, tenant, other_tenant, event):
    theirs = make_event(make_pipeline(other_tenant))
    make_deliveries(theirs, FAILED, 1, prefix="theirs")
    make_deliveries(event, FAILED, 1, prefix="ours")

    response = portal.get(url("log", tenant, pipeline=theirs.pipeline.pk))

    assert "Select a valid choice" in response.content.decode()
    assert theirs.pipeline not in response.context["form"].fields["pipeline"].queryset
    assert shown(response) == ["ours0@example.com"]
    assert shown(portal.get(url("log", tenant, event=theirs.pk))) == []


def test_pages_keep_the_filters(portal, tenant, event):
    # Adapted: the log pages by cursor ("Older" / "Newer"), no longer by page number.
    make_deliveries(event, FAILED, 60, prefix="f")
    make_deliveries(event, SENT, 5, prefix="s")
    path = url("log", tenant)

    first = portal.get(url("log", tenant, status="failed"))
    second = follow(portal, path, first, "next")

    assert len(shown(first)) == 50
    assert link(first, "next").startswith("?status=failed&cursor=")
    assert link(first, "prev") is None
    assert len(shown(second)) == 10
    assert link(second, "next") is None
    assert set(shown(first)) | set(shown(second)) == {f"f{n}@example.com" for n in range(60)}
    assert shown(follow(portal, path, second, "prev")) == shown(first)


def _spread(event, count, *, prefix, status=SENT, start=None):
    """`count` deliveries one second apart, the newest first by number: d0 newest."""
    start = start or timezone.now()
    rows = make_deliveries(event, status, count, prefix=prefix)
    for n, delivery in enumerate(rows):
        Delivery.objects.filter(pk=delivery.pk).update(created_at=start - timedelta(seconds=n))
    return rows


def test_the_log_pages_by_cursor_newest_first_and_back(portal, tenant, event):
    _spread(event, 120, prefix="d")
    path = url("log", tenant)

    first = portal.get(path)
    second = follow(portal, path, first, "next")
    third = follow(portal, path, second, "next")

    assert shown(first) == [f"d{n}@example.com" for n in range(50)]
    assert shown(second) == [f"d{n}@example.com" for n in range(50, 100)]
    assert shown(third) == [f"d{n}@example.com" for n in range(100, 120)]
    assert link(third, "next") is None
    assert shown(follow(portal, path, third, "prev")) == shown(second)
    assert "Newer" in first.content.decode()
    assert "Older" in first.content.decode()


def test_the_log_pages_stay_stable_while_deliveries_arrive(portal, tenant, event):
    _spread(event, 100, prefix="d", start=timezone.now() - timedelta(hours=1))
    path = url("log", tenant)
    first = portal.get(path)

    # New mail goes out between two clicks: the next page neither repeats nor skips a row.
    _spread(event, 30, prefix="new")
    second = follow(portal, path, first, "next")
    assert shown(second) == [f"d{n}@example.com" for n in range(50, 100)]

    # Back: the 50 just before, then the newest ones on a first page.
    back = follow(portal, path, second, "prev")
    assert shown(back) == shown(first)
    newest = follow(portal, path, back, "prev")
    assert shown(newest)[:30] == [f"new{n}@example.com" for n in range(30)]
    assert len(shown(newest)) == 50
    assert link(newest, "prev") is None


def test_a_cursor_that_is_not_ours_gives_the_first_page(portal, tenant, event):
    _spread(event, 3, prefix="d")
    for cursor in ["nonsense", "e30", "WyJmIixbIngiLCJ5Il1d", "%00"]:
        response = portal.get(url("log", tenant, cursor=cursor))
        assert response.status_code == 200
        assert shown(response) == ["d0@example.com", "d1@example.com", "d2@example.com"]


def test_the_log_says_more_than_a_thousand_instead_of_counting_them_all(portal, tenant, event):
    make_deliveries(event, SENT, 1001, prefix="d")

    response, queries = capture(portal, url("log", tenant))

    assert "More than 1000 deliveries" in response.content.decode()
    assert unbounded_counts(queries) == []
    make_deliveries(make_event(event.pipeline, run_id="other"), FAILED, 3, prefix="f")
    assert "3 deliveries" in portal.get(url("log", tenant, status="failed")).content.decode()


@pytest.mark.parametrize("rows", [10, 200])
def test_each_log_page_costs_the_same_queries_whatever_the_rows(
    portal, tenant, event, rows, django_assert_max_num_queries
):
    _spread(event, rows, prefix="d")
    path = url("log", tenant)
    with django_assert_max_num_queries(MAX_QUERIES):
        first = portal.get(path)
    with django_assert_max_num_queries(MAX_QUERIES):
        filtered = portal.get(url("log", tenant, status="sent", recipient="d1"))
    if rows > 50:
        with django_assert_max_num_queries(MAX_QUERIES):
            follow(portal, path, first, "next")
    assert shown(filtered)


def test_the_event_page_pages_its_recipients_by_address(portal, tenant, event):
    # Adapted with the log: "Previous" / "Next" by cursor, in address order.
    rows = make_deliveries(event, SENT, 70, prefix="p")
    path = url("event_detail", tenant, event.pk)
    expected = sorted(d.address for d in rows)

    first, queries = capture(portal, path)
    second = follow(portal, path, first, "next")

    assert shown(first) == expected[:50]
    assert shown(second) == expected[50:]
    assert shown(follow(portal, path, second, "prev")) == expected[:50]
    assert unbounded_counts(queries) == [] or all(
        "event_id" in sql for sql in unbounded_counts(queries)
    )


def test_an_empty_log_says_where_deliveries_come_from(portal, tenant):
    page = portal.get(url("log", tenant)).content.decode()
    assert "Nothing delivered yet" in page
    assert (
        "No delivery matches these filters"
        in portal.get(url("log", tenant, status="failed")).content.decode()
    )


# The event page ----------------------------------------------------------------------


def test_the_event_page_shows_the_event_its_progress_and_each_attempt(portal, tenant, deploy_prod):
    event = make_event(deploy_prod, stage="migrate", message="Migration 0042 failed.")
    refused = make_deliveries(event, FAILED, 1, prefix="refused")
    make_attempts(
        refused,
        ("timed_out", None, ""),
        ("recipient_rejected", 550, "5.1.1 <refused0@example.com>: User unknown"),
    )
    make_deliveries(event, SENT, 2, prefix="sent")
    make_deliveries(event, QUEUED, 1, prefix="waiting")

    page = portal.get(url("event_detail", tenant, event.pk)).content.decode()

    for text in [
        "Pipeline failed",
        "Payments / Deploy prod",
        "migrate",
        "Migration 0042 failed.",
        'href="https://ci.example.com/payments/deploy-prod/runs/4711"',
        "2 of 4 sent, 1 failed, 1 to go",
        "Timed out",
        "Recipient rejected",
        "5.1.1 &lt;refused0@example.com&gt;: User unknown",
        "Send all failed again",
        'data-running="true"',
        "Attempts (2)",
    ]:
        assert text in page, text


def test_the_event_page_filters_its_recipients_by_status(portal, tenant, event):
    make_deliveries(event, FAILED, 1, prefix="failed")
    make_deliveries(event, SENT, 3, prefix="sent")

    response = portal.get(url("event_detail", tenant, event.pk, status="failed"))

    assert shown(response) == ["failed0@example.com"]
    assert len(shown(portal.get(url("event_detail", tenant, event.pk, status="nonsense")))) == 4


def test_the_progress_bar_updates_from_a_static_script_without_inline_script(portal, tenant, event):
    make_deliveries(event, QUEUED, 2)

    page = portal.get(url("event_detail", tenant, event.pk)).content.decode()

    scripts = re.findall(r"<script([^>]*)>", page)
    assert all("src=" in attributes for attributes in scripts), scripts
    assert any("delivery/progress.js" in attributes for attributes in scripts)
    assert finders.find("delivery/progress.js")
    progress_url = reverse("tenancy:delivery:event_progress", args=[tenant.slug, event.pk])
    assert f'data-progress-url="{progress_url}"' in page


def test_a_finished_event_does_not_poll(portal, tenant, event):
    make_deliveries(event, SENT, 2)
    page = portal.get(url("event_detail", tenant, event.pk)).content.decode()
    assert 'data-running="false"' in page
    assert "Send all failed again" in page  # present for the script, hidden
    assert re.search(r'data-progress-show-if="failed"\s+hidden', page)


def test_progress_answers_the_counts_as_json_while_delivery_runs(portal, tenant, event):
    deliveries = make_deliveries(event, QUEUED, 4)
    progress_url = url("event_progress", tenant, event.pk)

    running = portal.get(progress_url)
    Delivery.objects.filter(pk__in=[d.pk for d in deliveries[:3]]).update(status=SENT)
    Delivery.objects.filter(pk=deliveries[3].pk).update(status=FAILED)
    done = portal.get(progress_url).json()

    assert running["Cache-Control"].startswith("max-age=0")
    assert running.json()["running"] is True
    assert running.json()["queued"] == 4
    assert done["running"] is False
    assert (done["total"], done["sent"], done["failed"], done["queued"]) == (4, 3, 1, 0)
    assert done["summary"] == "3 of 4 sent, 1 failed"
    assert done["percent"] == {"sent": 75.0, "failed": 25.0, "suppressed": 0.0, "opted_out": 0.0}


# Resend --------------------------------------------------------------------------------


def test_resend_puts_a_failed_delivery_back_in_the_queue_audited(
    portal, tenant, tenant_admin, event, django_capture_on_commit_callbacks
):
    failed = make_deliveries(event, FAILED, 1)[0]
    back = url("log", tenant, status="failed")

    with django_capture_on_commit_callbacks() as scheduled:
        response = portal.post(url("resend", tenant, failed.pk), {"next": back}, follow=True)

    assert response.redirect_chain[-1][0] == back
    assert "will be sent again" in response.content.decode()
    assert statuses([failed]) == [QUEUED]
    assert AuditEntry.objects.filter(actor=tenant_admin, tenant=tenant).exists()
    # Sending is scheduled for after the commit, not done in the request.
    assert scheduled


@pytest.mark.parametrize("status", [SENT, QUEUED, DeliveryStatus.SENDING, "suppressed"])
def test_only_a_failed_delivery_can_be_sent_again(portal, tenant, event, status):
    delivery = make_deliveries(event, status, 1)[0]

    response = portal.post(url("resend", tenant, delivery.pk), follow=True)

    assert "Only failed deliveries can be sent again" in response.content.decode()
    assert statuses([delivery]) == [status]
    assert not AuditEntry.objects.exists()


def test_resend_never_redirects_away_from_the_site(portal, tenant, event):
    failed = make_deliveries(event, FAILED, 1)[0]

    response = portal.post(url("resend", tenant, failed.pk), {"next": "https://evil.example/"})

    assert response["Location"] == url("event_detail", tenant, event.pk)


def test_resend_all_failed_of_an_event_leaves_the_others_alone(
    portal, tenant, event, django_capture_on_commit_callbacks
):
    failed = make_deliveries(event, FAILED, 3, prefix="f")
    sent = make_deliveries(event, SENT, 2, prefix="s")
    other_event = make_event(event.pipeline, event_type=EventType.STAGE_FAILED)
    other_failed = make_deliveries(other_event, FAILED, 1, prefix="o")

    with django_capture_on_commit_callbacks():
        response = portal.post(url("event_resend_failed", tenant, event.pk), follow=True)

    assert "3 failed deliveries will be sent again" in response.content.decode()
    assert statuses(failed) == [QUEUED] * 3
    assert statuses(sent) == [SENT] * 2
    assert statuses(other_failed) == [FAILED]


@pytest.mark.parametrize("failures", [1, 40])
def test_resend_all_failed_is_one_update_and_one_audit_entry(
    portal,
    tenant,
    event,
    failures,
    django_capture_on_commit_callbacks,
    django_assert_max_num_queries,
):
    make_deliveries(event, FAILED, failures, prefix="f")

    with django_capture_on_commit_callbacks(), django_assert_max_num_queries(12):
        portal.post(url("event_resend_failed", tenant, event.pk))

    entry = AuditEntry.objects.get()
    assert (entry.action, entry.changes) == (
        "event.failed_resent",
        {"deliveries sent again": [None, failures]},
    )


def test_resend_all_with_nothing_failed_changes_nothing(portal, tenant, event):
    sent = make_deliveries(event, SENT, 2)

    response = portal.post(url("event_resend_failed", tenant, event.pk), follow=True)

    assert "nothing to send again" in response.content.decode()
    assert statuses(sent) == [SENT] * 2
    assert not AuditEntry.objects.exists()


def test_members_and_other_tenants_cannot_resend(
    client, tenant, tenant_member, other_tenant_admin, event
):
    failed = make_deliveries(event, FAILED, 1)[0]
    for user, status in [(tenant_member, 403), (other_tenant_admin, 404)]:
        client.force_login(user)
        assert client.post(url("resend", tenant, failed.pk)).status_code == status
        assert client.post(url("event_resend_failed", tenant, event.pk)).status_code == status
    assert statuses([failed]) == [FAILED]
    assert not AuditEntry.objects.exists()


# Bounded queries --------------------------------------------------------------------------


@pytest.mark.parametrize("rows", [5, 500])
def test_the_log_runs_a_bounded_number_of_queries(
    portal, tenant, event, rows, django_assert_max_num_queries
):
    make_deliveries(event, FAILED, rows)
    for n in range(3):
        # Deliveries of several events and pipelines, so nothing is read per row.
        other = make_event(make_pipeline(tenant, name=f"Pipe {n}", project=f"P{n}"))
        make_deliveries(other, SENT, rows // 5, prefix=f"p{n}-")

    with django_assert_max_num_queries(MAX_QUERIES):
        response = portal.get(url("log", tenant, status="failed", pipeline=event.pipeline.pk))

    assert len(shown(response)) == min(rows, 50)


@pytest.mark.parametrize("rows", [5, 500])
def test_the_event_page_runs_a_bounded_number_of_queries(
    portal, tenant, event, rows, django_assert_max_num_queries
):
    deliveries = make_deliveries(event, FAILED, rows)
    make_attempts(deliveries, ("timed_out", None, ""), ("recipient_rejected", 550, "No"))

    with django_assert_max_num_queries(MAX_QUERIES):
        response = portal.get(url("event_detail", tenant, event.pk))
    with django_assert_max_num_queries(MAX_QUERIES - 2):
        portal.get(url("event_progress", tenant, event.pk))

    assert len(shown(response)) == min(rows, 50)
    assert response.content.decode().count("Recipient rejected") == min(rows, 50)


# The dashboard's chart -----------------------------------------------------------------------


def test_the_dashboard_charts_sent_and_failed_per_day(client, tenant, tenant_member, event):
    now = timezone.now()
    today = timezone.localdate()
    make_deliveries(event, SENT, 4, prefix="t", finished_at=now)
    make_deliveries(event, FAILED, 1, prefix="tf", finished_at=now)
    make_deliveries(event, SENT, 2, prefix="y", finished_at=now - timedelta(days=1))
    make_deliveries(event, FAILED, 3, prefix="a", finished_at=now - timedelta(days=5))
    make_deliveries(event, SENT, 9, prefix="old", finished_at=now - timedelta(days=20))
    client.force_login(tenant_member)

    page = client.get(reverse("tenancy:dashboard", args=[tenant.slug])).content.decode()

    def row(days_ago, sent, failed):
        day = today - timedelta(days=days_ago)
        return f'<th scope="row">{day:%Y-%m-%d}</th><td>{sent}</td><td>{failed}</td>'

    assert row(0, 4, 1) in page
    assert row(1, 2, 0) in page
    assert row(5, 0, 3) in page
    assert row(13, 0, 0) in page
    assert f"{today - timedelta(days=14):%Y-%m-%d}" not in page
    assert "Sent: 6" in page
    assert "Failed: 4" in page
    assert '<title id="delivery-chart-title">' in page
    assert "6 sent, 4 failed" in page  # the chart's description
    assert page.count('class="text-success" fill="currentColor" x=') == 14
    # Members see the totals; the log with addresses is for tenant admins.
    assert reverse("tenancy:delivery:log", args=[tenant.slug]) not in page


def test_the_dashboard_without_deliveries_says_so(portal, tenant):
    page = portal.get(reverse("tenancy:dashboard", args=[tenant.slug])).content.decode()
    assert "Nothing was sent or failed in the last 14 days" in page
    assert "<svg viewBox" not in page
    assert reverse("tenancy:delivery:log", args=[tenant.slug]) in page


@pytest.mark.parametrize("rows", [10, 200])
def test_each_event_page_costs_the_same_queries_whatever_the_recipients(
    portal, tenant, event, rows, django_assert_max_num_queries
):
    deliveries = make_deliveries(event, FAILED, rows, prefix="p")
    make_attempts(deliveries, ("recipient_rejected", 550, "No"))
    path = url("event_detail", tenant, event.pk)
    # The log's reads, the event, its progress, its recipients and their attempts.
    with django_assert_max_num_queries(MAX_QUERIES + 2):
        first = portal.get(path)
    if rows > 50:
        with django_assert_max_num_queries(MAX_QUERIES + 2):
            follow(portal, path, first, "next")
