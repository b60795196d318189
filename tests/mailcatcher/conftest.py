from tests.mailcatcher.fixtures import mail_catcher  # noqa: F401 (a fixture)
