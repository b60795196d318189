from apps.mailcatcher.parsing import message_headline, message_parse
from tests.mailcatcher.fixtures import multipart_message


def test_a_multipart_message_gives_headers_text_html_and_attachments():
    message = multipart_message()
    message.add_attachment(b"\x89PNG", maintype="image", subtype="png", filename="chart.png")

    parsed = message_parse(message.as_bytes())

    assert ("Subject", "Build 42 failed") in parsed.headers
    assert parsed.text.strip() == "Build 42 failed at the test stage."
    assert "<strong>42</strong>" in parsed.html
    assert [(a.filename, a.content_type, a.size) for a in parsed.attachments] == [
        ("chart.png", "image/png", 4)
    ]


def test_a_plain_message_has_no_html_part():
    parsed = message_parse(b"Subject: Hi\r\n\r\nJust text.\r\n")

    assert parsed.text.strip() == "Just text."
    assert parsed.html is None
    assert parsed.attachments == []


def test_encoded_and_raw_utf8_headers_are_decoded_for_the_list():
    raw = (
        b"Subject: =?utf-8?q?Caf=C3=A9_r=C3=A9sum=C3=A9?=\r\n"
        b"From: =?utf-8?q?Z=C3=BCrich?= <z@example.com>\r\n"
        b"To: J\xc3\xbcrgen <j@example.com>,\r\n ops@example.com\r\n\r\nBody\r\n"
    )

    assert message_headline(raw) == {
        "subject": "Café résumé",
        "from_header": "Zürich <z@example.com>",
        "to_header": "Jürgen <j@example.com>, ops@example.com",
    }


def test_a_malformed_message_is_shown_rather_than_failing():
    raw = (
        b"Subject: =?x-unknown?q?broken?=\r\n"
        b"To: <<not an address\r\n"
        b"Content-Type: text/plain; charset=x-no-such-charset\r\n\r\n"
        b"caf\xe9\r\n"
    )

    parsed = message_parse(raw)
    headline = message_headline(raw)

    assert parsed.text.strip() == "caf\ufffd"
    assert headline["to_header"].startswith("<<not an address")
