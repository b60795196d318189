"""Celery beat keeps its schedule file in var/ (or CELERY_BEAT_SCHEDULE_FILENAME), never
in the repository root."""

from pathlib import Path

from django.conf import settings

from config.celery import Scheduler, app

ROOT = Path(__file__).resolve().parents[2]


def test_the_schedule_file_is_in_var_not_the_repository_root():
    schedule = Path(app.conf.beat_schedule_filename)
    assert schedule == Path(settings.VAR_DIR) / "celerybeat-schedule"
    assert schedule.parent != ROOT
    assert app.conf.beat_scheduler == "config.celery:Scheduler"


def test_beat_makes_the_schedule_directory_it_is_given(tmp_path):
    filename = tmp_path / "state" / "beat" / "celerybeat-schedule"
    scheduler = Scheduler(app=app, schedule_filename=str(filename), lazy=False)
    try:
        assert filename.parent.is_dir()
        assert any(filename.parent.iterdir())  # the schedule itself (shelve adds a suffix or not)
    finally:
        scheduler.close()
