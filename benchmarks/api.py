"""The events API under concurrent clients, next to a bare Django JSON view on the same server.

The server is gunicorn with one process of threads (gthread) serving
benchmarks.wsgi, in a process of its own; the clients are threads here,
each with one keep-alive connection (http.client), posting for a fixed time.
"""

import http.client
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from benchmarks.workers import stop
from benchmarks.world import World, event_body

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
# Requests before the clock starts: the server's threads open their database connections.
WARM_UP_SECONDS = 0.5


def _free_port() -> int:
    with socket.create_server((HOST, 0)) as probe:
        return probe.getsockname()[1]


@contextmanager
def wsgi_server(*, threads: int, log: Path):
    """gunicorn serving benchmarks.wsgi; yields its port once it answers."""
    port = _free_port()
    command = [
        *(sys.executable, "-m", "gunicorn", "benchmarks.wsgi:application"),
        *("--bind", f"{HOST}:{port}", "--worker-class", "gthread", "--workers", "1"),
        *("--threads", str(threads), "--keep-alive", "30", "--log-level", "warning"),
        "--no-control-socket",
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT)
    try:
        _wait_answering(port, process, log)
        yield port
    finally:
        stop(process)


def _wait_answering(port: int, process: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            connection = http.client.HTTPConnection(HOST, port, timeout=5)
            connection.request("GET", "/bench/bare")
            connection.getresponse().read()
            connection.close()
            return
        except OSError as error:
            if process.poll() is not None or time.monotonic() > deadline:
                log_text = log.read_text()
                raise SystemExit(f"The WSGI server did not start; its log:\n{log_text}") from error
            time.sleep(0.1)


def load(port: int, path: str, bodies, *, clients: int, seconds: float, headers: dict) -> dict:
    """`clients` threads posting for `seconds`; answers per second, latencies, failures.

    `bodies(client, number)` makes each request's JSON body.
    """
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    failures: list[str] = []
    begin = time.monotonic() + WARM_UP_SECONDS
    stop = begin + seconds
    headers = {"Content-Type": "application/json", **headers}

    def client(number: int) -> None:
        connection = http.client.HTTPConnection(HOST, port, timeout=30)
        mine, counted, request = [], {}, 0
        try:
            while (now := time.monotonic()) < stop:
                request += 1
                connection.request("POST", path, json.dumps(bodies(number, request)), headers)
                response = connection.getresponse()
                response.read()
                if now >= begin:
                    mine.append(time.monotonic() - now)
                    counted[response.status] = counted.get(response.status, 0) + 1
        except (OSError, http.client.HTTPException) as error:
            failures.append(f"{type(error).__name__}: {error}")
        finally:
            connection.close()
            with lock:
                latencies.extend(mine)
                for status, count in counted.items():
                    statuses[status] = statuses.get(status, 0) + count

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    accepted = statuses.get(202, 0)
    latencies.sort()
    return {
        "per_second": round(accepted / seconds),
        "accepted": accepted,
        "other_answers": {str(s): n for s, n in statuses.items() if s != 202},
        "failures": failures[:5],
        "p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1) if latencies else None,
    }


def events_api(world: World, *, clients: int, seconds: float, logs: Path) -> dict:
    """The events API and the bare view, one after the other, on the same server."""
    authorization = {"Authorization": f"Bearer {world.token}"}

    def event(client: int, number: int) -> dict:
        return event_body(world.quiet, client * 1_000_000 + number)

    with wsgi_server(threads=clients, log=logs / "gunicorn.log") as port:
        bare = load(port, "/bench/bare", event, clients=clients, seconds=seconds, headers={})
        api = load(
            port, "/api/v1/events", event, clients=clients, seconds=seconds, headers=authorization
        )
    return {"clients": clients, "seconds": seconds, "bare": bare, "api": api}
