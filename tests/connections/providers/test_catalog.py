from apps.connections.catalog import Provider
from apps.webhooks.models import Provider as WebhookProvider


def test_providers_are_named_as_the_delivery_webhooks_name_them():
    assert Provider.choices == WebhookProvider.choices
