"""Deleting old rows in small batches, within a time budget (data retention).

Each batch is its own short transaction: a busy table is never locked for
long, and a run that is stopped loses nothing. A run always does at least one
batch of each table it is given, then goes on while its budget lasts; what is
left is deleted by the next run.
"""

import time
from dataclasses import dataclass, field
from datetime import datetime

from django.db import models, transaction


@dataclass
class Budget:
    """The seconds a run may take, from its start."""

    seconds: float
    started: float = field(default_factory=time.monotonic)

    def left(self) -> bool:
        return time.monotonic() - self.started < self.seconds


@dataclass
class Purged:
    """Rows one purge deleted, and whether it got to the end (False: the budget ran out)."""

    deleted: int = 0
    done: bool = True


def rows_purge(*, rows: models.QuerySet, batch_size: int, budget: Budget) -> Purged:
    """Delete `rows` (a filter an index serves) `batch_size` at a time, while `budget` lasts."""
    purged = Purged()
    while True:
        with transaction.atomic():
            ids = list(rows.order_by().values_list("pk", flat=True)[:batch_size])
            if ids:
                _, per_model = rows.model._default_manager.filter(pk__in=ids).delete()
                purged.deleted += per_model.get(rows.model._meta.label, 0)
        if len(ids) < batch_size:
            return purged
        if not budget.left():
            purged.done = False
            return purged


def oldest_rows_purge(
    *,
    model: type[models.Model],
    time_field: str,
    before: datetime,
    batch_size: int,
    budget: Budget,
) -> Purged:
    """Delete `model`'s rows older than `before`, for a table with no index on its time.

    Rows are read oldest first by primary key (it grows with the time they were
    written), and a batch stops at the first row that is not old: the primary
    key's index serves every read, however big the table.
    """
    purged = Purged()
    while True:
        with transaction.atomic():
            head = list(
                model._default_manager.order_by("pk").values_list("pk", time_field)[:batch_size]
            )
            ids = []
            for pk, at in head:
                if at is None or at >= before:
                    break
                ids.append(pk)
            if ids:
                _, per_model = model._default_manager.filter(pk__in=ids).delete()
                purged.deleted += per_model.get(model._meta.label, 0)
        if len(ids) < batch_size:
            return purged
        if not budget.left():
            purged.done = False
            return purged
