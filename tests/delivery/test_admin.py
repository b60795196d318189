"""Events and deliveries of every tenant in the host administration: readable, never changed."""

import pytest
from django.urls import reverse

from apps.audit.models import AuditEntry
from apps.core.keyset import CappedCountPaginator
from apps.delivery.models import Delivery, DeliveryStatus, Event
from tests.delivery.log_records import make_attempts, make_deliveries, make_event, make_pipeline
from tests.keyset import capture, unbounded_counts


@pytest.fixture
def deliveries(tenant, other_tenant):
    ours = make_event(make_pipeline(tenant), run_id="ours-4711")
    theirs = make_event(make_pipeline(other_tenant), run_id="theirs-99")
    refused = make_deliveries(ours, DeliveryStatus.FAILED, 1, prefix="refused")
    make_attempts(refused, ("recipient_rejected", 550, "5.1.1 User unknown here"))
    make_deliveries(ours, DeliveryStatus.SENT, 2, prefix="acme")
    make_deliveries(theirs, DeliveryStatus.SENT, 1, prefix="globex")
    return refused[0]


def _rows(response) -> list[str]:
    return [d.address for d in response.context["cl"].result_list]


def test_system_administrators_see_every_tenants_deliveries(admin_client, deliveries):
    response = admin_client.get(reverse("admin:delivery_delivery_changelist"))

    assert response.status_code == 200
    assert sorted(_rows(response)) == [
        "acme0@example.com",
        "acme1@example.com",
        "globex0@example.com",
        "refused0@example.com",
    ]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status__exact": "failed"}, ["refused0@example.com"]),
        ({"q": "GLOBEX"}, ["globex0@example.com"]),
        ({"q": "theirs-99"}, ["globex0@example.com"]),
    ],
)
def test_deliveries_filter_by_status_and_search_by_recipient_or_run(
    admin_client, deliveries, query, expected
):
    response = admin_client.get(reverse("admin:delivery_delivery_changelist"), query)
    assert _rows(response) == expected


def test_deliveries_filter_by_tenant(admin_client, deliveries, other_tenant):
    response = admin_client.get(
        reverse("admin:delivery_delivery_changelist"), {"tenant__id__exact": other_tenant.pk}
    )
    assert _rows(response) == ["globex0@example.com"]


def test_events_search_by_run_and_filter_by_tenant(admin_client, deliveries, tenant):
    changelist = reverse("admin:delivery_event_changelist")

    by_run = admin_client.get(changelist, {"q": "ours-4711"}).context["cl"].result_list
    by_tenant = admin_client.get(changelist, {"tenant__id__exact": tenant.pk}).context["cl"]

    assert [e.run_id for e in by_run] == ["ours-4711"]
    assert [e.run_id for e in by_tenant.result_list] == ["ours-4711"]


def test_an_event_links_to_its_deliveries(admin_client, deliveries):
    event = deliveries.event
    event.recipient_count = 3
    event.save(update_fields=["recipient_count"])
    changelist = reverse("admin:delivery_delivery_changelist")

    events = admin_client.get(reverse("admin:delivery_event_changelist")).content.decode()
    link = f"{changelist}?event__id__exact={event.pk}"
    response = admin_client.get(link)

    assert f'<a href="{link}">3</a>' in events
    assert sorted(_rows(response)) == [
        "acme0@example.com",
        "acme1@example.com",
        "refused0@example.com",
    ]


def test_a_delivery_shows_its_attempts_read_only(admin_client, deliveries):
    page = admin_client.get(reverse("admin:delivery_delivery_change", args=[deliveries.pk]))

    html = page.content.decode()
    assert page.status_code == 200
    assert "5.1.1 User unknown here" in html
    assert "recipient_rejected" in html
    # Nothing to edit: no inputs for the delivery's fields, no save button.
    assert 'name="status"' not in html
    assert 'name="_save"' not in html
    assert 'name="attempts-0-reply"' not in html


def test_nothing_can_be_added_changed_or_deleted(admin_client, deliveries):
    event = deliveries.event
    before = list(Delivery.objects.order_by("pk").values()), list(Event.objects.values())

    refused = [
        admin_client.get(reverse("admin:delivery_delivery_add")),
        admin_client.get(reverse("admin:delivery_event_add")),
        admin_client.post(
            reverse("admin:delivery_delivery_change", args=[deliveries.pk]),
            {"status": "queued", "address": "changed@example.com"},
        ),
        admin_client.post(
            reverse("admin:delivery_delivery_delete", args=[deliveries.pk]), {"post": "yes"}
        ),
        admin_client.post(reverse("admin:delivery_event_delete", args=[event.pk]), {"post": "yes"}),
    ]

    assert [r.status_code for r in refused] == [403] * 5
    assert (list(Delivery.objects.order_by("pk").values()), list(Event.objects.values())) == before
    changelist = admin_client.get(reverse("admin:delivery_delivery_changelist"))
    assert "delete_selected" not in changelist.content.decode()


def test_tenant_admins_cannot_open_it(client, tenant_admin, deliveries):
    client.force_login(tenant_admin)
    response = client.get(reverse("admin:delivery_delivery_changelist"))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


@pytest.mark.parametrize("rows", [5, 500])
@pytest.mark.parametrize("model", ["delivery", "event"])
def test_the_lists_run_a_bounded_number_of_queries(
    admin_client, tenant, model, rows, django_assert_max_num_queries
):
    for n in range(rows // 5):
        make_deliveries(make_event(make_pipeline(tenant, name=f"P {n}", project=f"P{n}")), count=5)

    with django_assert_max_num_queries(12):
        response = admin_client.get(reverse(f"admin:delivery_{model}_changelist"))

    assert len(response.context["cl"].result_list) == min(
        rows if model == "delivery" else rows // 5, 100
    )


# Big lists: no exact count, no date hierarchy, searches an index answers ------------------

BIG_LISTS = [
    "admin:delivery_delivery_changelist",
    "admin:delivery_event_changelist",
    "admin:audit_auditentry_changelist",
]


@pytest.mark.parametrize("changelist", BIG_LISTS)
def test_the_big_host_lists_never_count_a_table_exactly(
    admin_client, deliveries, changelist, monkeypatch
):
    monkeypatch.setattr(CappedCountPaginator, "cap", 2)
    AuditEntry.objects.bulk_create(AuditEntry(action="tenant.poked") for _ in range(3))
    make_event(deliveries.event.pipeline, run_id="third")

    response, queries = capture(admin_client, reverse(changelist))

    assert response.status_code == 200
    assert "more than 2" in response.content.decode()
    assert unbounded_counts(queries) == []
    # No date hierarchy: it reads the distinct days of the whole table.
    assert not any("DISTINCT" in q["sql"] and "created_at" in q["sql"] for q in queries)


def test_a_short_host_list_says_how_many(admin_client, deliveries):
    response = admin_client.get(reverse("admin:delivery_delivery_changelist"))
    assert "4 deliveries" in response.content.decode()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"q": "ACME"}, ["acme1@example.com", "acme0@example.com"]),
        ({"q": "example.com"}, []),  # the start of an address, not any part
        ({"q": "ours-4711"}, ["acme1@example.com", "acme0@example.com", "refused0@example.com"]),
    ],
)
def test_deliveries_search_by_the_start_of_an_address_or_a_whole_run(
    admin_client, deliveries, query, expected
):
    response = admin_client.get(reverse("admin:delivery_delivery_changelist"), query)
    assert _rows(response) == expected


def test_deliveries_search_by_a_whole_message_id(admin_client, deliveries):
    response = admin_client.get(
        reverse("admin:delivery_delivery_changelist"), {"q": deliveries.message_id}
    )
    assert _rows(response) == ["refused0@example.com"]


def test_events_search_by_a_pipelines_name(admin_client, deliveries, tenant):
    changelist = reverse("admin:delivery_event_changelist")
    found = admin_client.get(changelist, {"q": "deploy prod"}).context["cl"].result_list
    assert sorted(e.run_id for e in found) == ["ours-4711", "theirs-99"]
