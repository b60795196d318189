"""A notification's unsubscribe headers and footer links, as a real SMTP server receives them."""

import email
import email.policy
import re
from urllib.parse import urlsplit

import pytest
from django.test.signals import template_rendered
from django.urls import resolve, reverse

from apps.delivery.messages import MessageBuilder
from apps.delivery.models import Delivery
from apps.preferences.unsubscribe import UnsubscribeScope, unsubscribe_link_read
from tests.connections.smtp.factories import SmtpSettingsFactory
from tests.delivery.engine import add_members, deliver, make_event
from tests.factories import NotificationRuleFactory, UserGroupFactory

pytestmark = pytest.mark.django_db

SITE = "https://postmaster.example.com"
LINK = re.compile(rf"{re.escape(SITE)}/unsubscribe/[^/\s\"<>]+/")


@pytest.fixture(autouse=True)
def _site(settings):
    settings.SITE_URL = SITE + "/"  # a trailing slash or not, the links are the same


def parse(content: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(content, policy=email.policy.default)


def parts(message) -> tuple[str, str]:
    """The text and HTML parts, with the line ends a mail program shows."""
    return tuple(
        message.get_body((kind,)).get_content().replace("\r\n", "\n") for kind in ("plain", "html")
    )


def read(url: str):
    """The link behind an unsubscribe URL, through the URL conf as a request would go."""
    match = resolve(urlsplit(url).path)
    assert match.view_name == "unsubscribe:link"
    return unsubscribe_link_read(match.kwargs["token"])


@pytest.fixture
def group_rule(tenant, deploy_prod):
    group = UserGroupFactory(
        tenant=tenant, name="Release managers", alias_addresses=[], notify_all_members=True
    )
    ann, bob = add_members(group, "ann@payments.example", "bob@payments.example")
    rule = NotificationRuleFactory(
        pipeline=deploy_prod, name="Prod failures", groups=[group], addresses=["ops@x.example"]
    )
    return rule, ann, bob


def test_every_message_has_one_click_headers_whose_token_names_its_recipient(
    mail_server, sink, tenant, deploy_prod, group_rule
):
    _, ann, bob = group_rule
    deliveries = deliver(make_event(deploy_prod))

    received = {parse(content)["To"]: parse(content) for content in sink.accepted}
    assert sorted(received) == ["ann@payments.example", "bob@payments.example", "ops@x.example"]
    users = {"ann@payments.example": ann.pk, "bob@payments.example": bob.pk, "ops@x.example": None}
    for delivery in deliveries:
        message = received[delivery.address]
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        header = message["List-Unsubscribe"]
        assert re.fullmatch(r"<https://[^<>\s]+>", header), header
        link = read(header[1:-1])
        assert link.address == delivery.address
        assert (link.user.pk if link.user else None) == users[delivery.address]
        assert link.tenant == tenant
        # The mail program's button unsubscribes from the narrowest scope: this pipeline.
        assert (link.scope, link.pipeline, link.project) == (
            UnsubscribeScope.PIPELINE,
            deploy_prod,
            deploy_prod.project,
        )


def test_both_parts_say_why_and_link_to_each_scope_and_my_notifications(
    mail_server, sink, tenant, deploy_prod, group_rule
):
    deliver(make_event(deploy_prod))

    message = next(parse(c) for c in sink.accepted if parse(c)["To"] == "ann@payments.example")
    assert message.get_content_type() == "multipart/alternative"
    text, html = parts(message)
    why = (
        "You receive this because you are in the group “Release managers”, which the rule "
        "“Prod failures” of pipeline “deploy-prod” notifies."
    )
    for part in (text, html):
        assert why in part
        assert "Pipeline Deploy prod failed" in part
    text_links = dict(re.findall(rf"^(Unsubscribe from [^:]+): ({LINK.pattern})$", text, re.M))
    html_links = {
        name: url for url, name in re.findall(rf'<a href="({LINK.pattern})"[^>]*>([^<]+)</a>', html)
    }
    names = [
        "Unsubscribe from this pipeline",
        "Unsubscribe from this project",
        "Unsubscribe from everything from Acme",
    ]
    assert list(text_links) == list(html_links) == names
    assert text_links == html_links
    scopes = [read(url) for url in text_links.values()]
    assert [(s.scope, s.pipeline, s.project) for s in scopes] == [
        (UnsubscribeScope.PIPELINE, deploy_prod, deploy_prod.project),
        (UnsubscribeScope.PROJECT, None, deploy_prod.project),
        (UnsubscribeScope.TENANT, None, None),
    ]
    assert {s.address for s in scopes} == {"ann@payments.example"}
    my_notifications = SITE + reverse("preferences:my_notifications")
    assert f"Choose what you receive in My notifications: {my_notifications}\n" in text
    assert f'<a href="{my_notifications}" style="color:#6c757d;">My notifications</a>' in html


def test_the_header_link_is_the_footers_pipeline_link(mail_server, sink, deploy_prod, group_rule):
    deliver(make_event(deploy_prod))

    for content in sink.accepted:
        message = parse(content)
        text, _ = parts(message)
        assert f"Unsubscribe from this pipeline: {message['List-Unsubscribe'][1:-1]}\n" in text


def test_long_and_non_ascii_lines_keep_their_links_intact(mail_server, sink, deploy_prod):
    address = "a.very.long.local.part.of.an.address.for.wrapping@subdomain.payments.example"
    NotificationRuleFactory(pipeline=deploy_prod, name="Ünïcode rule “x”", addresses=[address])

    deliver(make_event(deploy_prod, message="Ça a échoué: " + "é" * 300))

    text, _ = parts(parse(sink.accepted[0]))
    assert "Ça a échoué: " + "é" * 300 in text
    assert "Ünïcode rule “x”" in text
    links = LINK.findall(text)
    assert len(links) == 3
    assert {read(url).address for url in links} == {address}
    # Quoted-printable keeps every encoded line within 76 characters.
    body = sink.accepted[0].split(b"\r\n\r\n", 1)[1]
    assert max(len(line) for line in body.split(b"\r\n")) <= 76


def test_a_message_per_recipient_costs_little_more_than_signing(tenant, deploy_prod):
    """Rendered once per reason; per recipient only its tokens are signed, a few lines encoded."""
    smtp_settings = SmtpSettingsFactory()
    event = make_event(deploy_prod)
    builder = MessageBuilder(smtp_settings)
    reason = "You receive this because you are in the group “Everyone”."
    deliveries = [
        Delivery(
            event=event,
            tenant=tenant,
            address=f"person{i}@x.example",
            user_id=i,
            reason=reason,
            message_id=f"<{i}@x.example>",
        )
        for i in range(1000)
    ]
    # Counted, not timed (a busy machine makes any stopwatch lie): rendering is what costs
    # (~2 ms a message against ~0.1 ms for three signatures and a few encoded lines).
    rendered = []

    def count(sender, template, **kwargs):
        rendered.append(template.name)

    template_rendered.connect(count)
    try:
        builder.message_bytes(deliveries[0])  # renders the templates
        first = len(rendered)
        messages = [builder.message_bytes(delivery) for delivery in deliveries]
    finally:
        template_rendered.disconnect(count)

    assert len(set(messages)) == 1000
    assert first > 0
    assert len(rendered) == first, f"{len(rendered) - first} renderings for 1,000 messages"
