"""Keyset pagination (apps/core/keyset.py) on its own: cursors, both directions, any order."""

import pytest

from apps.audit.models import AuditEntry
from apps.core.keyset import (
    CappedCountPaginator,
    capped_count,
    decode_cursor,
    encode_cursor,
    keyset_paginate,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def entries():
    return AuditEntry.objects.bulk_create(AuditEntry(action=f"a{n:03}") for n in range(25))


def _actions(page) -> list[str]:
    return [e.action for e in page.object_list]


def test_pages_walk_forward_and_back_by_cursor(entries):
    queryset = AuditEntry.objects.all()
    newest = sorted(entries, key=lambda e: (e.created_at, e.pk), reverse=True)

    first = keyset_paginate(queryset, None, per_page=10)
    second = keyset_paginate(queryset, first.next_cursor, per_page=10)
    third = keyset_paginate(queryset, second.next_cursor, per_page=10)

    assert [e.pk for e in first.object_list] == [e.pk for e in newest[:10]]
    assert [e.pk for e in third.object_list] == [e.pk for e in newest[20:]]
    assert not first.has_previous
    assert not third.has_next
    back = keyset_paginate(queryset, third.previous_cursor, per_page=10)
    assert back.object_list == second.object_list
    assert back.has_previous
    assert back.has_next


def test_an_ascending_order_of_other_columns(entries):
    queryset = AuditEntry.objects.all()
    first = keyset_paginate(queryset, None, ordering=("action", "id"), per_page=10)
    second = keyset_paginate(queryset, first.next_cursor, ordering=("action", "id"), per_page=10)
    assert _actions(first) == [f"a{n:03}" for n in range(10)]
    assert _actions(second) == [f"a{n:03}" for n in range(10, 20)]


def test_a_short_way_back_gives_the_full_first_page(entries):
    queryset = AuditEntry.objects.all()
    first = keyset_paginate(queryset, None, per_page=10)
    second = keyset_paginate(queryset, first.next_cursor, per_page=10)
    # Five of the first page's rows go: back from the second page is the first page, full.
    AuditEntry.objects.filter(pk__in=[e.pk for e in first.object_list[:5]]).delete()
    back = keyset_paginate(queryset, second.previous_cursor, per_page=10)
    assert len(back.object_list) == 10
    assert not back.has_previous


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "!!!",
        "bm9wZQ",
        encode_cursor("x", [1, 2]),
        encode_cursor("f", [1]),
        encode_cursor("f", ["not a date", 1]),
        encode_cursor("f", [None, 1]),
    ],
)
def test_a_cursor_that_is_not_ours_reads_as_none(cursor):
    assert decode_cursor(AuditEntry.objects.all(), ["created_at", "id"], cursor) is None


def test_one_way_only():
    with pytest.raises(ValueError, match="one way"):
        keyset_paginate(AuditEntry.objects.all(), None, ordering=("-created_at", "id"))


def test_the_capped_count_stops_past_the_cap(entries, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert capped_count(AuditEntry.objects.all(), cap=10) == 11
    assert capped_count(AuditEntry.objects.all(), cap=100) == 25


def test_the_admin_paginator_says_more_than_the_cap(entries, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "cap", 20)
    paginator = CappedCountPaginator(AuditEntry.objects.order_by("-id"), 10)
    assert str(paginator.count) == "more than 20"
    assert paginator.num_pages == 3
    monkeypatch.setattr(CappedCountPaginator, "cap", 100)
    assert CappedCountPaginator(AuditEntry.objects.order_by("-id"), 10).count == 25
