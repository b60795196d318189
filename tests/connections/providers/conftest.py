import pytest

from apps.demo.standin import ProviderStandin
from tests.connections.providers.factories import standin_credentials


@pytest.fixture
def standin():
    """The providers' stand-in on 127.0.0.1, accepting only the test keys."""
    with ProviderStandin(credentials=standin_credentials()) as server:
        yield server
