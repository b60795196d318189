import pytest

from apps.connections.validators import one_line


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Deploy prod", "Deploy prod"),
        ("a\r\nBcc: evil@example.com", "a Bcc: evil@example.com"),
        ("a\x00b", "a b"),
        ("a\u2028b\u2029c\u0085d\x0be\x1cf", "a b c d e f"),
        ("  spaced \t out  ", "spaced out"),
        ("=?utf-8?q?=0d=0a?=", "=\u200b?utf-8?q?=0d=0a?="),
    ],
)
def test_one_line_leaves_text_that_cannot_start_a_header(text, expected):
    assert one_line(text) == expected
