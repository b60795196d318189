"""The scratch database a run works in: created fresh, dropped after.

SQLite by default (a new file in a temporary folder); with DATABASE_URL
naming PostgreSQL, a `postmaster_bench` database on that server, whatever
database the URL names (which is never touched).
"""

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

NAME = "postmaster_bench"


@contextmanager
def scratch_database(database_url: str):
    """Yield the URL of a new, empty scratch database; drop it afterwards."""
    if not database_url or database_url.startswith("sqlite"):
        folder = Path(tempfile.mkdtemp(prefix="postmaster-bench-"))
        try:
            yield f"sqlite:///{folder / 'bench.sqlite3'}"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    parts = urlsplit(database_url)
    if not parts.scheme.startswith("postgres"):
        raise SystemExit(f"The benchmark runs on SQLite or PostgreSQL, not {parts.scheme}.")
    _recreate(parts, drop_only=False)
    try:
        yield urlunsplit(parts._replace(path=f"/{NAME}"))
    finally:
        _recreate(parts, drop_only=True)


def _recreate(parts, *, drop_only: bool) -> None:
    # Connected to the server's maintenance database: one cannot drop the database one is in.
    admin = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        name = sql.Identifier(NAME)
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        if not drop_only:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(name))
