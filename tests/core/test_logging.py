"""LOG_FORMAT=json: one JSON object a line, with the Celery task and its ids as fields."""

import io
import json
import logging
import logging.config
import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

from apps.delivery.tasks import events_dispatch_task
from config.celery import _log_context_enter, _log_context_leave

ROOT = Path(__file__).resolve().parents[2]


def _json_logger(stream) -> logging.Logger:
    config = {
        **settings.LOGGING,
        "handlers": {
            "capture": {
                "class": "logging.StreamHandler",
                "stream": stream,
                "formatter": "json",
                "filters": ["context"],
            }
        },
        "root": {"handlers": [], "level": "INFO"},
        "loggers": {"postmaster.test": {"handlers": ["capture"], "level": "INFO"}},
    }
    logging.config.dictConfig(config)
    return logging.getLogger("postmaster.test")


def test_a_task_s_lines_carry_its_name_and_ids():
    stream = io.StringIO()
    try:
        logger = _json_logger(stream)
        task = events_dispatch_task
        task.push_request(args=(42,), kwargs={})
        try:
            _log_context_enter(task=task, args=(42,), kwargs={})
            logger.warning("Tenant %s: failing over.", 42)
            _log_context_leave(task=task)
            logger.info("after the task")
        finally:
            task.pop_request()
    finally:
        logging.config.dictConfig(settings.LOGGING)

    during, after = (json.loads(line) for line in stream.getvalue().splitlines())
    assert during["message"] == "Tenant 42: failing over."
    assert during["level"] == "WARNING"
    assert during["logger"] == "postmaster.test"
    assert during["task"] == "apps.delivery.tasks.events_dispatch_task"
    assert during["tenant_id"] == 42
    assert "time" in during
    assert "task" not in after
    assert "tenant_id" not in after


def test_log_format_json_is_what_the_settings_choose():
    code = (
        "import django; django.setup(); from django.conf import settings as s;"
        "print(s.LOGGING['handlers']['console']['formatter'], s.CELERY_WORKER_HIJACK_ROOT_LOGGER)"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "LOG_FORMAT": "json"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.split() == ["json", "False"]
