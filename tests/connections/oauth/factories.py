import factory
from factory.django import DjangoModelFactory

from apps.connections.models import OAuthGrant, OAuthProvider
from apps.core.fields import Secret
from tests.connections.oauth.conftest import DIRECTORY, GOOGLE_CLIENT_ID, MICROSOFT_CLIENT_ID


class OAuthGrantFactory(DjangoModelFactory):
    """A Microsoft 365 grant by default; `google=True` for Google (pass `refresh=` a token)."""

    class Meta:
        model = OAuthGrant
        skip_postgeneration_save = True

    class Params:
        secret = "client-secret-value"
        refresh = ""
        google = factory.Trait(
            provider=OAuthProvider.GOOGLE, directory_id="", client_id=GOOGLE_CLIENT_ID
        )

    tenant = factory.SelfAttribute("smtp_settings.tenant")
    provider = OAuthProvider.MICROSOFT
    directory_id = DIRECTORY
    client_id = MICROSOFT_CLIENT_ID
    client_secret = factory.LazyAttribute(lambda grant: Secret(grant.secret))
    refresh_token = factory.LazyAttribute(
        lambda grant: Secret(grant.refresh) if grant.refresh else None
    )
