"""Keyset (cursor) pagination: a page costs the same at 10 rows and 100 million.

A list is ordered by a few columns that end with the primary key, e.g.
`(created_at, id)` newest first. A page is the `per_page` rows after (or
before) the row a cursor names, read with one row comparison the list's index
serves:

    WHERE (created_at, id) < (%s, %s) ORDER BY created_at DESC, id DESC LIMIT n + 1

The extra row says whether there is a next page; nothing is ever counted
exactly. The cursor is opaque to people (`?cursor=…` in the links), and a
cursor that does not decode gives the first page, never an error.

`keyset_page(request, queryset)` is the one way in for views; the partial
`partials/keyset_pagination.html` draws its "Newer" / "Older" links.
"""

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.core.paginator import Paginator
from django.db.models import F, QuerySet
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan, TupleLessThan
from django.utils.functional import cached_property

PAGE_SIZE = 50
# A capped count reads at most this many rows (+1) and says "more than" beyond.
COUNT_CAP = 1000
CURSOR_PARAM = "cursor"
NEWEST_FIRST = ("-created_at", "-id")

_FORWARD, _BACKWARD = "f", "b"


@dataclass
class KeysetPage:
    """One page of a list, and the cursors of its neighbours (None where there is none)."""

    object_list: list
    next_cursor: str | None = None  # further along the order ("Older" when newest first)
    previous_cursor: str | None = None  # back towards the start ("Newer")
    # A capped count of the whole (filtered) list, when asked for: see `capped_count`.
    count: int | None = None
    count_cap: int = COUNT_CAP
    extra: dict = field(default_factory=dict)

    @property
    def has_next(self) -> bool:
        return self.next_cursor is not None

    @property
    def has_previous(self) -> bool:
        return self.previous_cursor is not None

    @property
    def has_other_pages(self) -> bool:
        return self.has_next or self.has_previous

    @property
    def count_is_capped(self) -> bool:
        return self.count is not None and self.count > self.count_cap

    def __iter__(self):
        return iter(self.object_list)

    def __len__(self):
        return len(self.object_list)


def capped_count(queryset: QuerySet, cap: int = COUNT_CAP) -> int:
    """How many rows, counting at most `cap + 1`: `COUNT(*)` over a `LIMIT` subquery.

    A result above `cap` means "more than `cap`"; the cost is bounded
    whatever the table holds.
    """
    return queryset.order_by()[: cap + 1].count()


def _keys(ordering: Sequence[str]) -> tuple[list[str], bool]:
    names = [key.lstrip("-") for key in ordering]
    descending = {key.startswith("-") for key in ordering}
    if len(descending) != 1:
        raise ValueError("Keyset ordering must go one way: all ascending or all descending.")
    return names, descending.pop()


def _value(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def encode_cursor(direction: str, values: Sequence[Any]) -> str:
    payload = json.dumps([direction, [_value(v) for v in values]], separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(queryset: QuerySet, names: Sequence[str], cursor: str):
    """(direction, values typed as the model's fields), or None for anything that is not ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        direction, values = json.loads(raw)
        if direction not in (_FORWARD, _BACKWARD) or len(values) != len(names):
            return None
        model = queryset.model
        typed = []
        for name, value in zip(names, values, strict=True):
            model_field = model._meta.pk if name == "pk" else model._meta.get_field(name)
            if value is None:
                return None
            typed.append(model_field.to_python(value))
        return direction, typed
    except (ValueError, TypeError, binascii.Error, ValidationError, FieldDoesNotExist):
        return None


def _after(queryset: QuerySet, names, descending: bool, values, *, forward: bool) -> QuerySet:
    """Rows strictly past `values` along the order (forward) or before them (backward)."""
    further = descending == forward  # descending and forward: smaller keys
    lookup = TupleLessThan if further else TupleGreaterThan
    return queryset.filter(lookup(Tuple(*(F(n) for n in names)), tuple(values)))


def keyset_paginate(
    queryset: QuerySet,
    cursor: str | None,
    *,
    ordering: Sequence[str] = NEWEST_FIRST,
    per_page: int = PAGE_SIZE,
    count_cap: int | None = None,
) -> KeysetPage:
    """The page `cursor` names (the first page without one), in `ordering` (ending with `id`).

    One query for the rows (two when a "Newer" page comes up short and the
    first page is read instead; one more with `count_cap`), whatever the
    table holds, provided an index matches the filter and the ordering.
    """
    names, descending = _keys(ordering)
    reverse = [f"{'' if descending else '-'}{n}" for n in names]
    decoded = decode_cursor(queryset, names, cursor) if cursor else None
    count = capped_count(queryset, count_cap) if count_cap is not None else None

    def first_page() -> KeysetPage:
        rows = list(queryset.order_by(*ordering)[: per_page + 1])
        return _page(rows[:per_page], more_after=len(rows) > per_page, more_before=False)

    def _page(rows, *, more_after: bool, more_before: bool) -> KeysetPage:
        def key(obj):
            return [getattr(obj, n) for n in names]

        return KeysetPage(
            object_list=rows,
            next_cursor=encode_cursor(_FORWARD, key(rows[-1])) if rows and more_after else None,
            previous_cursor=(
                encode_cursor(_BACKWARD, key(rows[0])) if rows and more_before else None
            ),
            count=count,
            count_cap=count_cap or COUNT_CAP,
        )

    if decoded is None:
        return first_page()
    direction, values = decoded
    if direction == _FORWARD:
        rows = list(
            _after(queryset, names, descending, values, forward=True).order_by(*ordering)[
                : per_page + 1
            ]
        )
        # The cursor's row came before: there is a page back (unless all was deleted since).
        return _page(rows[:per_page], more_after=len(rows) > per_page, more_before=True)
    rows = list(
        _after(queryset, names, descending, values, forward=False).order_by(*reverse)[
            : per_page + 1
        ]
    )
    if len(rows) <= per_page:
        # Back at the start (rows came in since, or some went): the first page, full.
        return first_page()
    rows = rows[:per_page][::-1]
    return _page(rows, more_after=True, more_before=True)


def keyset_page(
    request,
    queryset: QuerySet,
    *,
    ordering: Sequence[str] = NEWEST_FIRST,
    per_page: int = PAGE_SIZE,
    count_cap: int | None = None,
) -> KeysetPage:
    """The page of `queryset` that the request's `?cursor=` names."""
    return keyset_paginate(
        queryset,
        request.GET.get(CURSOR_PARAM),
        ordering=ordering,
        per_page=per_page,
        count_cap=count_cap,
    )


class MoreThan(int):
    """A capped count: compares and pages as `cap + 1`, reads "more than <cap>"."""

    def __new__(cls, cap: int):
        instance = super().__new__(cls, cap + 1)
        instance.cap = cap
        return instance

    def __str__(self):
        return f"more than {self.cap}"


class CappedCountPaginator(Paginator):
    """For the host admin's big changelists: never counts a big table exactly.

    The count reads at most `cap + 1` rows (`COUNT(*)` over a `LIMIT`
    subquery) and says "more than <cap>" beyond; pages past it are not
    linked. Use with `show_full_result_count = False`.
    """

    cap = COUNT_CAP

    @cached_property
    def count(self) -> int:
        n = capped_count(self.object_list, self.cap)
        return MoreThan(self.cap) if n > self.cap else n
