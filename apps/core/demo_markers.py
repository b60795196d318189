"""What marks the demo's data, for production's refusal to run with it (apps/operations/checks.py).

The demo itself (`manage.py seed_demo`, apps/demo) is installed in development only; these
few identifiers live down here so production code never imports it. The demo seeds exactly
these accounts (tests/demo/test_seed_demo.py checks that the two lists agree).
"""

SYSTEM_ADMIN_EMAIL = "admin@postmaster.test"
TENANT_ADMIN_EMAIL = "alice@acme.test"
OTHER_TENANT_ADMIN_EMAIL = "grace@globex.test"
# Every account the demo creates; their password is published in the README.
DEMO_EMAILS = (
    SYSTEM_ADMIN_EMAIL,
    TENANT_ADMIN_EMAIL,
    "bob@acme.test",
    "carol@acme.test",
    OTHER_TENANT_ADMIN_EMAIL,
    "hank@globex.test",
    "ivy@initech.test",
    "peter@initech.test",
)
# A known token, so the README's curl example works against `make run`. Demo only:
# real tokens are random and shown once.
DEMO_API_TOKEN = "pm_demo-acme-checkout-token-0000000000000000"
