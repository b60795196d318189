"""`python -m benchmarks` (`make bench`): Postmaster's speed next to its limit and a peer.

Everything runs in one go against one SMTP sink on 127.0.0.1, in a scratch
database made for the run and dropped after it: SQLite, or with
DATABASE_URL naming PostgreSQL a `postmaster_bench` database on that
server. With CELERY_BROKER_URL (and CACHE_URL, shared by the processes) the
engine runs in real Celery workers; without, eagerly in this process.
See benchmarks/README.md for what each line means.
"""

import argparse
import cProfile
import json
import os
import pstats
import sys
import tempfile
import uuid
from contextlib import nullcontext
from pathlib import Path

# What each measurement is, in the order they run.
MEASURES = {
    "resolution": "recipient resolution of the fan-out's event",
    "limit": "raw smtplib over one connection",
    "peer": "django-post-office, send_many then send_queued",
    "api": "the events API and a bare view under concurrent clients",
    "fan_out": "Postmaster: one event to every recipient",
    "small_events": "Postmaster: events of 10 recipients, one after the other",
}
PHASES = tuple(MEASURES)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--recipients",
        type=int,
        help="recipients of the fan-out, messages of every other run "
        "(default 10000; 200 with --quick)",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object (the table goes to stderr)"
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="Celery workers when CELERY_BROKER_URL is set (2)"
    )
    parser.add_argument("--clients", type=int, default=8, help="concurrent API clients (8)")
    parser.add_argument(
        "--api-seconds", type=float, help="how long each API measurement runs (5; 1 with --quick)"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="write a cProfile of each measurement run in this process to DIR/<name>.prof",
    )
    parser.add_argument(
        "--only",
        help=f"comma-separated measurements to run, of {', '.join(PHASES)} (default: all)",
    )
    args = parser.parse_args(argv)
    args.recipients = args.recipients or (200 if args.quick else 10_000)
    args.api_seconds = args.api_seconds or (1.0 if args.quick else 5.0)
    args.only = set(args.only.split(",")) if args.only else set(PHASES)
    if unknown := args.only - set(PHASES):
        parser.error(f"unknown measurement {', '.join(sorted(unknown))}; choose from {PHASES}")
    if args.recipients < 10:
        parser.error("--recipients must be at least 10")
    return args


def say(text: str) -> None:
    """Progress, on stderr: stdout has only the table (or the JSON)."""
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    args = _arguments(argv)
    broker = os.environ.get("CELERY_BROKER_URL", "")
    if broker and not os.environ.get("CACHE_URL"):
        raise SystemExit(
            "With CELERY_BROKER_URL the workers and this process must share a cache: "
            "set CACHE_URL too (e.g. redis://127.0.0.1:6379/15)."
        )
    if broker and not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        # Two workers writing one SQLite file fail with "database is locked".
        raise SystemExit(
            "With CELERY_BROKER_URL the workers need PostgreSQL: set DATABASE_URL too "
            "(e.g. postgres://postgres@127.0.0.1:5432/postmaster_bench)."
        )
    run = uuid.uuid4().hex[:8]
    logs = Path(tempfile.mkdtemp(prefix="postmaster-bench-logs-"))

    from benchmarks.scratch import scratch_database
    from benchmarks.sink import Sink

    with Sink() as sink, scratch_database(os.environ.get("DATABASE_URL", "")) as database_url:
        # Read by Django here and by the workers and the server this run starts.
        os.environ.update(
            DJANGO_SETTINGS_MODULE="benchmarks.settings",
            DATABASE_URL=database_url,
            POSTMASTER_BENCH_SINK=f"{sink.host}:{sink.port}",
            POSTMASTER_BENCH_RUN=run,
            CELERY_TASK_DEFAULT_QUEUE=f"postmaster-bench-{run}",
        )
        import django

        django.setup()
        from django.db import connections

        try:
            config, figures = _measure(args, sink, logs, run)
        finally:
            connections.close_all()  # the scratch database is dropped next
            if broker:
                _queue_delete(f"postmaster-bench-{run}")

    from benchmarks.report import table, targets

    if args.json:
        # The table still goes to stderr, for whoever watches the run.
        print(table(figures, config), file=sys.stderr)
        found = [target.as_json() for target in targets(figures)]
        everything = {"config": config, **figures, "targets": found}
        print(json.dumps(everything, indent=2, ensure_ascii=False))
    else:
        print(table(figures, config))
    say(f"logs of the workers and the server: {logs}")


def _measure(args: argparse.Namespace, sink, logs: Path, run: str) -> tuple[dict, dict]:
    import django
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from benchmarks import engine, measure
    from benchmarks.api import events_api
    from benchmarks.report import BUSY_LOAD
    from benchmarks.workers import celery_workers
    from benchmarks.world import message_shape, world_create

    workers = bool(settings.CELERY_BROKER_URL)
    version = ".".join(map(str, connection.get_database_version()))
    engine_runs = f"{args.workers} Celery workers (--pool=solo)" if workers else "eager (no broker)"
    config = {
        "database": f"{connection.display_name} {version}",
        "engine": engine_runs,
        "workers": args.workers if workers else 0,
        "recipients": args.recipients,
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "django": django.get_version(),
        "batch_size": settings.DELIVERY_BATCH_SIZE,
        "senders": settings.DELIVERY_SENDERS,
        # Other work on the machine lowers every figure: said with the table.
        "load_at_start": round(os.getloadavg()[0], 2),
    }
    if config["load_at_start"] > BUSY_LOAD:
        say(
            f"the machine is busy (load {config['load_at_start']} on {config['cpus']} CPUs): "
            "the figures will be low and uneven"
        )
    say(f"{config['database']}, {config['engine']}: migrating the scratch database")
    call_command("migrate", verbosity=0, interactive=False)
    say(f"creating {args.recipients:,} people, their group, pipelines and rules")
    world = world_create(recipients=args.recipients, sink_host=sink.host, sink_port=sink.port)
    shape = message_shape(world)
    timeout = max(120.0, args.recipients / 50)
    only, figures = args.only, {}

    def measured(name: str, call, *arguments, **options) -> None:
        if name in only:
            figures[name] = _profiled(args.profile, name, call, *arguments, **options)

    measured("resolution", measure.resolution, world)
    measured("limit", measure.raw_smtplib, shape, world.people, sink, timeout=timeout)
    measured("peer", measure.post_office, shape, world.people, sink, timeout=timeout)
    # Before the workers start: the API is measured taking events in, nothing else running.
    measured("api", events_api, world, clients=args.clients, seconds=args.api_seconds, logs=logs)
    if "api" in only and workers:
        _queue_purge(settings.CELERY_TASK_DEFAULT_QUEUE)
    if only & {"fan_out", "small_events"}:
        running = celery_workers(args.workers, logs=logs, run=run) if workers else nullcontext()
        with running as processes:
            pids = [process.pid for process in processes] if workers else [os.getpid()]
            engine.warm_up(world, sink, timeout=timeout)
            measured("fan_out", engine.fan_out, world, sink, engine_pids=pids, timeout=timeout)
            events = args.recipients // 10
            measured(
                "small_events",
                engine.small_events,
                world,
                sink,
                events=events,
                engine_pids=pids,
                timeout=timeout,
            )
    return config, figures


def _profiled(directory: Path | None, name: str, call, *arguments, **options) -> dict:
    """Run one measurement, under cProfile when asked (what runs in this process only)."""
    say(f"{name}: {MEASURES[name]}")
    if directory is None:
        return call(*arguments, **options)
    directory.mkdir(parents=True, exist_ok=True)
    profile = cProfile.Profile()
    try:
        return profile.runcall(call, *arguments, **options)
    finally:
        profile.dump_stats(directory / f"{name}.prof")
        pstats.Stats(profile, stream=sys.stderr).sort_stats("tottime").print_stats(15)


def _queue_purge(queue: str) -> None:
    """Drop the dispatch tasks of the API's events: the workers are there for the engine runs."""
    from config.celery import app

    with app.connection_for_write() as broker:
        broker.default_channel.queue_purge(queue)


def _queue_delete(queue: str) -> None:
    """Leave the broker as it was: the queue, its routing keys, anything unacknowledged."""
    from tests.delivery.workers import queue_delete

    queue_delete(queue)


if __name__ == "__main__":
    main()
