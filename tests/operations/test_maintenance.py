"""Maintenance mode: the switch in the host administration, the banner, refused changes,
the events API still open, and mail paused until the switch goes off."""

import pytest
from django.test import RequestFactory
from django.urls import reverse

from apps.audit.models import AuditEntry
from apps.delivery.models import Delivery, DeliveryStatus, Event
from apps.delivery.services import events_sweep
from apps.delivery.tasks import deliveries_send_task
from apps.operations.middleware import MaintenanceModeMiddleware
from apps.operations.models import MaintenanceMode
from apps.operations.selectors import maintenance_state
from apps.operations.services import maintenance_update
from apps.pipelines.models import Pipeline
from apps.tenancy.models import Organization
from tests.api.conftest import EVENTS_URL, bearer, event_body, make_token
from tests.factories import TEST_PASSWORD, NotificationRuleFactory, ProjectFactory

pytestmark = pytest.mark.django_db

MESSAGE = "Upgrading the database; back by 14:00 UTC."
CHANGE_URL = "/admin/operations/maintenancemode/1/change/"


@pytest.fixture
def on(system_admin):
    return maintenance_update(actor=system_admin, is_on=True, message=MESSAGE)


def switch(client, django_capture_on_commit_callbacks, **data):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(CHANGE_URL, data)


# The switch -------------------------------------------------------------------------------


def test_the_list_is_the_one_rows_change_page(admin_client):
    response = admin_client.get(reverse("admin:operations_maintenancemode_changelist"))
    assert response.status_code == 302
    assert response["Location"] == CHANGE_URL
    page = admin_client.get(CHANGE_URL)
    assert page.status_code == 200
    assert "Shown at the top of every page" in page.text
    assert "Save and add another" not in page.text
    assert MaintenanceMode.objects.count() == 1


def test_a_system_admin_switches_it_on_and_off_audited(
    admin_client, system_admin, django_capture_on_commit_callbacks
):
    admin_client.get(reverse("admin:operations_maintenancemode_changelist"))
    response = switch(admin_client, django_capture_on_commit_callbacks, is_on="on", message=MESSAGE)
    assert response.status_code == 302
    assert maintenance_state().is_on
    assert maintenance_state().message == MESSAGE
    entry = AuditEntry.objects.get(action="maintenance.switched_on")
    assert entry.actor == system_admin
    assert entry.changes == {"is_on": [False, True], "message": ["", MESSAGE]}

    switch(admin_client, django_capture_on_commit_callbacks, message=MESSAGE)
    assert not maintenance_state().is_on
    assert AuditEntry.objects.filter(action="maintenance.switched_off").count() == 1


def test_switching_on_needs_a_message(admin_client, django_capture_on_commit_callbacks):
    admin_client.get(reverse("admin:operations_maintenancemode_changelist"))
    response = switch(admin_client, django_capture_on_commit_callbacks, is_on="on", message=" ")
    assert response.status_code == 200
    assert "Say what is going on" in response.text
    assert not maintenance_state().is_on
    assert not AuditEntry.objects.filter(action__startswith="maintenance.").exists()


def test_tenant_admins_cannot_reach_the_switch(client, tenant_admin):
    client.force_login(tenant_admin)
    response = client.post(CHANGE_URL, {"is_on": "on", "message": MESSAGE})
    assert response.status_code == 302  # to the admin's sign-in page
    assert "/admin/login/" in response["Location"]
    assert not maintenance_state().is_on


def test_the_flag_is_read_from_the_cache_without_a_query(
    on, django_assert_num_queries, django_capture_on_commit_callbacks, system_admin
):
    maintenance_state()  # fills the cache
    with django_assert_num_queries(0):
        assert maintenance_state().is_on
    # Switching writes through at commit: the next read sees it at once.
    with django_capture_on_commit_callbacks(execute=True):
        maintenance_update(actor=system_admin, is_on=False, message="")
    assert not maintenance_state().is_on


def test_the_middleware_costs_nothing_while_it_is_off(django_assert_num_queries, rf_user):
    maintenance_state()
    middleware = MaintenanceModeMiddleware(lambda request: None)
    request = RequestFactory().post("/t/acme/organisations/new/")
    request.user = rf_user
    with django_assert_num_queries(0):
        assert middleware.process_view(request, lambda r: None, (), {}) is None


@pytest.fixture
def rf_user(tenant_admin):
    return tenant_admin


# While it is on ---------------------------------------------------------------------------


def test_every_page_shows_the_banner(on, client, tenant_admin, admin_client):
    tenant_client = client.__class__()
    tenant_client.force_login(tenant_admin)
    for page in [reverse("tenancy:dashboard", args=["acme"]), reverse("home")]:
        response = tenant_client.get(page, follow=True)
        assert response.status_code == 200
        assert MESSAGE in response.text
        assert 'id="maintenance-banner"' in response.text
    assert MESSAGE in client.__class__().get(reverse("accounts:login")).text
    admin_page = admin_client.get(reverse("admin:index"))
    assert 'id="maintenance-banner"' in admin_page.text
    assert MESSAGE in admin_page.text


def test_no_banner_when_off(client, tenant_admin):
    client.force_login(tenant_admin)
    response = client.get(reverse("tenancy:dashboard", args=["acme"]))
    assert 'id="maintenance-banner"' not in response.text


def test_a_tenant_admins_change_is_refused_with_a_friendly_page(on, client, tenant_admin):
    client.force_login(tenant_admin)
    response = client.post(
        reverse("tenancy:organization_create", args=["acme"]),
        {"name": "Marketing", "slug": "marketing"},
        headers={"referer": "http://testserver/t/acme/organisations/new/"},
    )
    assert response.status_code == 503
    assert response["Retry-After"]
    assert "Nothing was changed" in response.text
    assert MESSAGE in response.text
    assert 'href="http://testserver/t/acme/organisations/new/"' in response.text
    assert not Organization.objects.filter(slug="marketing").exists()


def test_password_resets_wait_too(on, client, tenant_admin, mailoutbox):
    response = client.post(reverse("accounts:password_reset"), {"email": tenant_admin.email})
    assert response.status_code == 503
    assert mailoutbox == []


def test_a_system_admin_still_changes_things(on, admin_client, tenant):
    response = admin_client.post(
        reverse("admin:operations_maintenancemode_change", args=[1]),
        {"is_on": "on", "message": "Back by 15:00 UTC."},
    )
    assert response.status_code == 302
    assert MaintenanceMode.objects.get().message == "Back by 15:00 UTC."


def test_signing_in_and_out_stays_open(on, client, tenant_admin):
    response = client.post(
        reverse("accounts:login"), {"username": tenant_admin.email, "password": TEST_PASSWORD}
    )
    assert response.status_code == 302
    assert client.session.get("_auth_user_id") == str(tenant_admin.pk)
    assert client.post(reverse("accounts:logout")).status_code == 302
    assert "_auth_user_id" not in client.session


def test_the_unsubscribe_endpoint_stays_open(on, client):
    # A bad token is answered by the view itself (400), not refused for maintenance.
    response = client.post(reverse("unsubscribe:link", args=["not-a-token"]))
    assert response.status_code == 400


@pytest.fixture
def pipeline(tenant):
    project = ProjectFactory(organization__tenant=tenant, name="Payments", slug="payments")
    pipeline = Pipeline.objects.create(
        tenant=tenant, project=project, name="Deploy prod", slug="deploy-prod"
    )
    NotificationRuleFactory(pipeline=pipeline, addresses=["ann@x.example", "bob@x.example"])
    return pipeline


@pytest.mark.usefixtures("eager")
def test_events_are_accepted_and_mail_waits_until_maintenance_ends(
    on,
    client,
    pipeline,
    host_server,
    host_sink,
    admin_client,
    django_capture_on_commit_callbacks,
):
    raw = make_token(pipeline.project)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            EVENTS_URL, event_body(), content_type="application/json", headers=bearer(raw)
        )
    assert response.status_code == 202
    event = Event.objects.get()
    assert event.dispatched_at is not None  # recipients resolved; nothing sent
    deliveries = Delivery.objects.filter(event=event)
    assert deliveries.count() == 2
    assert set(deliveries.values_list("status", flat=True)) == {DeliveryStatus.QUEUED}

    # Neither a send task nor the sweep sends anything while it is on.
    deliveries_send_task(pipeline.tenant_id)
    events_sweep()
    assert host_sink.offered == []
    assert set(deliveries.values_list("status", flat=True)) == {DeliveryStatus.QUEUED}

    # Switching off queues the waiting mail.
    switch(admin_client, django_capture_on_commit_callbacks, message="")
    assert set(deliveries.values_list("status", flat=True)) == {DeliveryStatus.SENT}
    assert len(host_sink.accepted) == 2
