import pytest
from django.test import Client
from django.urls import reverse

from apps.audit.models import AuditEntry
from apps.mailcatcher.models import CaughtMessage
from apps.mailcatcher.services import caught_message_create
from tests.keyset import capture, follow, link, unbounded_counts
from tests.mailcatcher.fixtures import multipart_message

LIST = reverse("mailcatcher:list")


def catch(message=None, **kwargs) -> CaughtMessage:
    message = message or multipart_message(**kwargs)
    return caught_message_create(
        peer="127.0.0.1:40000",
        envelope_sender="postmaster@example.com",
        envelope_recipients=[message["To"]],
        raw=message.as_bytes(),
    )


def catch_many(count: int) -> None:
    raw = multipart_message().as_bytes()
    CaughtMessage.objects.bulk_create(
        CaughtMessage(
            envelope_sender="postmaster@example.com",
            envelope_recipients=["dev@example.com"],
            raw=raw,
            size=len(raw),
            subject=f"Message {n}",
            from_header="postmaster@example.com",
            to_header="dev@example.com",
        )
        for n in range(count)
    )


@pytest.fixture
def caught(db):
    return catch()


@pytest.mark.parametrize("url_name", ["list", "detail"])
def test_pages_are_for_system_administrators(client, system_admin, member, caught, url_name):
    url = reverse(f"mailcatcher:{url_name}", args=[caught.pk] if url_name == "detail" else [])

    response = client.get(url)
    assert response.status_code == 302
    assert response.url.startswith(reverse("accounts:login"))

    client.force_login(member)
    assert client.get(url).status_code == 403

    client.force_login(system_admin)
    assert client.get(url).status_code == 200


@pytest.mark.parametrize("url_name", ["list", "detail", "delete_all"])
def test_pages_do_not_exist_while_the_catcher_is_disabled(admin_client, caught, settings, url_name):
    settings.MAILCATCHER_ENABLED = False
    url = reverse(f"mailcatcher:{url_name}", args=[caught.pk] if url_name == "detail" else [])

    response = admin_client.post(url) if url_name == "delete_all" else admin_client.get(url)

    assert response.status_code == 404
    assert CaughtMessage.objects.exists()


def test_list_shows_newest_first(admin_client, db):
    catch(subject="Older")
    catch(subject="Newer")

    page = admin_client.get(LIST).content.decode()

    assert page.index("Newer") < page.index("Older")
    assert "postmaster@example.com" in page
    assert "dev@example.com" in page


def test_empty_list_says_how_to_start_the_catcher(admin_client):
    page = admin_client.get(LIST).content.decode()

    assert "No mail caught yet" in page
    assert "python manage.py mailcatcher" in page
    assert "smtp://127.0.0.1:1025" in page


def test_list_is_paginated(admin_client):
    # Adapted: by cursor ("Older" / "Newer"); the count is capped, never exact past 1,000.
    catch_many(60)

    first, queries = capture(admin_client, LIST)
    second = follow(admin_client, LIST, first, "next")

    assert len(first.context["page"].object_list) == 50
    assert len(second.context["page"].object_list) == 10
    assert "60 messages, newest first" in second.content.decode()
    assert link(second, "next") is None
    assert follow(admin_client, LIST, second, "prev").context["page"].object_list == list(
        first.context["page"].object_list
    )
    assert unbounded_counts(queries) == []


def test_list_says_more_than_a_thousand_instead_of_counting_them_all(admin_client):
    catch_many(1001)

    response, queries = capture(admin_client, LIST)

    assert "More than 1000 messages, newest first" in response.content.decode()
    assert unbounded_counts(queries) == []


@pytest.mark.parametrize("count", [5, 500])
def test_list_runs_a_bounded_number_of_queries(admin_client, django_assert_max_num_queries, count):
    catch_many(count)

    # Session, user, count, page.
    with django_assert_max_num_queries(4):
        response = admin_client.get(LIST)

    assert response.status_code == 200


def test_detail_lists_attachments_and_keeps_the_raw_source(admin_client):
    message = multipart_message(subject="Report")
    message.add_attachment(b"a,b\n1,2\n", maintype="text", subtype="csv", filename="report.csv")
    caught = catch(message)

    page = admin_client.get(reverse("mailcatcher:detail", args=[caught.pk])).content.decode()

    assert "report.csv" in page
    assert "text/csv" in page
    assert "Content-Disposition: attachment; filename=&quot;report.csv&quot;" in page


def test_detail_frames_the_html_part_sandboxed(admin_client):
    caught = catch(html='<p onclick="steal()">Hi</p><script>alert("x")</script>')

    page = admin_client.get(reverse("mailcatcher:detail", args=[caught.pk])).content.decode()

    html_url = reverse("mailcatcher:html", args=[caught.pk])
    sandbox = "allow-popups allow-popups-to-escape-sandbox"  # its links open in a new tab
    assert f'<iframe class="mail-html" sandbox="{sandbox}" src="{html_url}"' in page
    assert "<script>alert" not in page
    assert 'onclick="steal()"' not in page


def test_the_html_part_is_served_sandboxed_with_its_own_policy(admin_client):
    caught = catch(html='<p style="color: red">Hi</p><script>alert("x")</script>')

    response = admin_client.get(reverse("mailcatcher:html", args=[caught.pk]))

    # Its links open in a new tab, not inside the frame (which they would break).
    assert response.content.decode().startswith('<base target="_blank"><p style="color: red">Hi')
    policy = response["Content-Security-Policy"]
    # Its own inline styles show; nothing runs, loads or submits; only the portal frames it.
    assert "default-src 'none'" in policy
    assert "style-src 'unsafe-inline'" in policy
    assert "script-src" not in policy
    assert "sandbox allow-popups allow-popups-to-escape-sandbox" in policy
    assert "allow-scripts" not in policy
    assert "allow-forms" not in policy
    assert "frame-ancestors 'self'" in policy
    assert response["X-Frame-Options"] == "SAMEORIGIN"


@pytest.mark.parametrize(
    ("html", "served"),
    [
        (
            '<!DOCTYPE html><html><head><title>T</title></head><a href="https://x.test/">x</a>',
            '<!DOCTYPE html><html><head><base target="_blank"><title>T</title></head>',
        ),
        (
            '<!doctype html>\n<p><a href="https://x.test/">x</a></p>',
            '<!doctype html><base target="_blank">\n<p>',
        ),
    ],
)
def test_links_of_the_html_part_open_in_a_new_tab(admin_client, html, served):
    caught = catch(html=html)

    response = admin_client.get(reverse("mailcatcher:html", args=[caught.pk]))

    assert response.content.decode().startswith(served)


def test_the_html_part_is_for_system_administrators_only(client, member):
    caught = catch()
    client.force_login(member)
    assert client.get(reverse("mailcatcher:html", args=[caught.pk])).status_code == 403
    client.logout()
    assert client.get(reverse("mailcatcher:html", args=[caught.pk])).status_code == 302


def test_detail_of_a_missing_message_is_404(admin_client):
    assert admin_client.get(reverse("mailcatcher:detail", args=[999])).status_code == 404


def test_delete_all_needs_a_post_with_csrf(system_admin, caught):
    client = Client(enforce_csrf_checks=True)
    client.force_login(system_admin)
    url = reverse("mailcatcher:delete_all")

    assert client.get(url).status_code == 405
    assert client.post(url).status_code == 403
    assert CaughtMessage.objects.count() == 1


def test_delete_all_empties_the_list_and_is_audited(admin_client, system_admin):
    catch_many(3)

    response = admin_client.post(reverse("mailcatcher:delete_all"), follow=True)

    assert not CaughtMessage.objects.exists()
    assert "Deleted 3 caught messages." in response.content.decode()
    entry = AuditEntry.objects.get(action="mailcatcher.delete_all")
    assert entry.actor == system_admin
    assert entry.changes == {"deleted": 3}


def test_a_member_cannot_delete_caught_mail(client, member, caught):
    client.force_login(member)

    assert client.post(reverse("mailcatcher:delete_all")).status_code == 403
    assert CaughtMessage.objects.count() == 1
