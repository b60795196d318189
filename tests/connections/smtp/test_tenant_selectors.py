"""`effective_smtp_settings`: a tenant's own row, else the host's; never another tenant's."""

import pytest

from apps.connections.selectors import SmtpSource, effective_smtp_settings
from tests.connections.smtp.factories import SmtpSettingsFactory

pytestmark = pytest.mark.django_db


def test_a_tenant_with_its_own_row_uses_it(tenant):
    SmtpSettingsFactory(host="smtp.host.example")
    own = SmtpSettingsFactory(tenant=tenant, host="smtp.acme.example")

    row, source = effective_smtp_settings(tenant)

    assert (row, source) == (own, SmtpSource.OWN)
    assert source.label == "Your own SMTP server"


def test_a_tenant_without_one_inherits_the_hosts_cached_row(tenant, django_assert_num_queries):
    SmtpSettingsFactory(host="smtp.host.example", secret="host-pw")
    effective_smtp_settings(tenant)  # fills the host cache

    with django_assert_num_queries(1):  # only "has the tenant its own row?"
        row, source = effective_smtp_settings(tenant)

    assert source == SmtpSource.HOST
    assert source.label == "Host settings"
    assert (row.tenant_id, row.host, row.password.reveal()) == (
        None,
        "smtp.host.example",
        "host-pw",
    )


def test_another_tenants_row_is_never_returned(tenant, other_tenant):
    SmtpSettingsFactory(tenant=other_tenant, host="smtp.globex.example")

    # No host row either: nothing to send with, and still not the neighbour's server.
    assert effective_smtp_settings(tenant) == (None, SmtpSource.HOST)


def test_another_tenants_row_is_never_returned_with_a_host_row(tenant, other_tenant):
    host = SmtpSettingsFactory(host="smtp.host.example")
    theirs = SmtpSettingsFactory(tenant=other_tenant, host="smtp.globex.example")

    row, source = effective_smtp_settings(tenant)

    assert (row.pk, source) == (host.pk, SmtpSource.HOST)
    assert effective_smtp_settings(other_tenant) == (theirs, SmtpSource.OWN)


def test_the_host_itself_is_not_a_tenant():
    with pytest.raises(ValueError, match="needs a tenant"):
        effective_smtp_settings(None)
