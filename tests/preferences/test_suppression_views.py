"""The suppression list in the tenant portal: list, search, add, remove (tenant admins)."""

import re

import pytest
from django.urls import reverse

from apps.audit.models import AuditEntry
from apps.preferences.models import Suppression, SuppressionReason
from tests.keyset import capture, follow, link, unbounded_counts

pytestmark = pytest.mark.django_db


@pytest.fixture
def portal(client, tenant_admin):
    client.force_login(tenant_admin)
    return client


def url(name, tenant, *args) -> str:
    return reverse(f"tenancy:suppressions:{name}", args=[tenant.slug, *args])


def text(response) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", response.content.decode()).split())


def listed(tenant, address, reason=SuppressionReason.REFUSED, detail="") -> Suppression:
    return Suppression.objects.create(tenant=tenant, address=address, reason=reason, detail=detail)


def test_the_list_shows_each_address_with_its_reason_date_and_detail(portal, tenant, other_tenant):
    listed(tenant, "gone@x.example", detail="The mail server answered: 550 5.1.1 User unknown")
    listed(tenant, "ops@x.example", SuppressionReason.UNSUBSCRIBED)
    listed(other_tenant, "theirs@x.example")

    response = portal.get(url("list", tenant))

    page = text(response)
    assert "gone@x.example Refused permanently" in page
    assert "550 5.1.1 User unknown" in page
    assert "ops@x.example Unsubscribed" in page
    assert "theirs@x.example" not in page
    assert [s.address for s in response.context["page"]] == ["ops@x.example", "gone@x.example"]


def test_search_finds_part_of_an_address(portal, tenant):
    listed(tenant, "gone@x.example")
    listed(tenant, "ops@y.example")

    response = portal.get(url("list", tenant), {"q": " Y.EXAMPLE "})

    assert [s.address for s in response.context["page"]] == ["ops@y.example"]
    assert "No address on the list contains" in text(portal.get(url("list", tenant), {"q": "zz"}))


def test_an_empty_list_says_how_addresses_get_there(portal, tenant):
    assert "No address is on the suppression list." in text(portal.get(url("list", tenant)))


@pytest.mark.parametrize("rows", [5, 500])
def test_the_list_runs_a_bounded_number_of_queries(
    portal, tenant, rows, django_assert_max_num_queries
):
    Suppression.objects.bulk_create(
        Suppression(tenant=tenant, address=f"p{i}@x.example", reason=SuppressionReason.REFUSED)
        for i in range(rows)
    )
    # Adapted: the second page is reached by its cursor, not by number.
    with django_assert_max_num_queries(7):
        response = portal.get(url("list", tenant), {"q": "x.example"})
    if rows > 50:
        with django_assert_max_num_queries(7):
            response = follow(portal, url("list", tenant), response, "next")
    assert len(response.context["page"].object_list) == min(rows, 50)


def test_the_list_pages_by_cursor_and_keeps_the_search(portal, tenant, other_tenant):
    rows = Suppression.objects.bulk_create(
        Suppression(tenant=tenant, address=f"p{i}@x.example", reason=SuppressionReason.REFUSED)
        for i in range(70)
    )
    listed(tenant, "elsewhere@y.example")
    listed(other_tenant, "p1@x.example")
    path = url("list", tenant)
    newest_first = sorted((s.pk for s in rows), reverse=True)

    first, queries = capture(portal, path + "?q=x.example")
    second = follow(portal, path, first, "next")

    assert [s.pk for s in first.context["page"]] == newest_first[:50]
    assert [s.pk for s in second.context["page"]] == newest_first[50:]
    assert link(first, "next").startswith("?q=x.example&cursor=")
    assert "70 addresses" in text(first)
    assert [s.pk for s in follow(portal, path, second, "prev").context["page"]] == newest_first[:50]
    assert unbounded_counts(queries) == []


def test_an_admin_adds_an_address_and_it_is_audited(portal, tenant, tenant_admin):
    response = portal.post(
        url("add", tenant), {"address": " Former@X.example ", "detail": "Left the company"}
    )

    assert response.status_code == 302
    suppression = Suppression.objects.get()
    assert (suppression.tenant, suppression.address, suppression.reason, suppression.detail) == (
        tenant,
        "former@x.example",
        SuppressionReason.ADDED,
        "Left the company",
    )
    page = text(portal.get(response["Location"]))
    assert "former@x.example is on the suppression list: notifications skip it." in page
    assert "former@x.example Added by an admin" in page
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.tenant, entry.action) == (tenant_admin, tenant, "suppression.added")


def test_adding_a_listed_address_says_so_and_saves_nothing(portal, tenant):
    listed(tenant, "gone@x.example")

    response = portal.post(url("add", tenant), {"address": "GONE@x.example"})

    assert response.status_code == 200
    assert "gone@x.example is already on the suppression list (refused permanently" in text(
        response
    )
    assert Suppression.objects.count() == 1
    assert not AuditEntry.objects.exists()


def test_adding_something_that_is_not_an_address_is_refused(portal, tenant):
    response = portal.post(url("add", tenant), {"address": "not an address"})

    assert response.status_code == 200
    assert "Enter a valid email address." in text(response)
    assert not Suppression.objects.exists()


def test_the_same_address_may_be_listed_by_another_tenant(portal, tenant, other_tenant):
    listed(other_tenant, "gone@x.example")

    assert portal.post(url("add", tenant), {"address": "gone@x.example"}).status_code == 302
    assert Suppression.objects.for_tenant(tenant).get().address == "gone@x.example"


def test_removing_asks_first_then_removes_and_audits(portal, tenant, tenant_admin):
    suppression = listed(tenant, "ops@x.example", SuppressionReason.UNSUBSCRIBED)
    remove = url("remove", tenant, suppression.pk)

    page = text(portal.get(remove))
    assert "Remove ops@x.example from the suppression list?" in page
    assert "Its owner asked not to receive them" in page
    assert Suppression.objects.exists()

    response = portal.post(remove)

    assert response.status_code == 302
    assert not Suppression.objects.exists()
    page = text(portal.get(response["Location"]))
    assert "ops@x.example was removed from the suppression list: notifications reach it again." in (
        page
    )
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.tenant, entry.action) == (
        tenant_admin,
        tenant,
        "suppression.removed",
    )
    assert entry.changes == {"address": "ops@x.example", "reason": "Unsubscribed", "detail": ""}


def test_only_tenant_admins_see_the_tab(client, tenant, tenant_admin, tenant_member):
    tab = 'href="/t/acme/suppressions/">Suppression list</a>'
    client.force_login(tenant_admin)
    assert tab in client.get(reverse("tenancy:dashboard", args=[tenant.slug])).content.decode()
    client.force_login(tenant_member)
    response = client.get(reverse("tenancy:dashboard", args=[tenant.slug]))
    assert tab not in response.content.decode()
    assert client.get(url("list", tenant)).status_code == 403
