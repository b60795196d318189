"""Real Celery workers for the benchmark, on the scratch database and this run's queue.

They inherit the runner's environment (benchmarks.settings, DATABASE_URL of
the scratch database, CELERY_TASK_DEFAULT_QUEUE of this run), so they read
the same database and cache and take only this run's tasks.
"""

import signal
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READY = b" ready."


@contextmanager
def celery_workers(count: int, *, logs: Path, run: str):
    """`count` workers `--pool=solo`, each a process of its own; stopped on leaving.

    At INFO, as `make worker` runs them (a line per task).
    """
    with ExitStack() as stack:
        started = [
            stack.enter_context(_worker(logs / f"worker{n}.log", f"bench{n}-{run}"))
            for n in range(count)
        ]
        for log, process in started:
            _wait_ready(log, process)
        yield [process for _, process in started]


@contextmanager
def _worker(log: Path, name: str):
    command = [
        *(sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo"),
        *(f"--hostname={name}@%h", "--without-heartbeat", "--without-gossip"),
        *("--without-mingle", "--loglevel=INFO"),
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT)
    try:
        yield log, process
    finally:
        stop(process)


def stop(process: subprocess.Popen) -> None:
    """A warm shutdown (SIGTERM), then killed if it takes longer than 15 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(log: Path, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while READY not in log.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"A Celery worker did not start; its log:\n{log.read_text()}")
        time.sleep(0.1)
