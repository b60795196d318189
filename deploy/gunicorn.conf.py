"""gunicorn's settings for Postmaster's web process (deploy/Procfile, postmaster-web.service).

    gunicorn config.wsgi -c deploy/gunicorn.conf.py

Run it behind the reverse proxy that terminates TLS (deploy/nginx.conf). The environment
(the same file every process reads, docs/deploy.md) can change these:

GUNICORN_BIND     where it listens                 127.0.0.1:8000 (the proxy's upstream)
WEB_CONCURRENCY   worker processes                  2 (about one per core)
GUNICORN_THREADS  threads in each worker process    4
GUNICORN_TIMEOUT  seconds before a stuck request's worker is restarted   30
"""

import os

wsgi_app = "config.wsgi:application"
bind = [os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")]
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Threads: a request waiting on the database or an SMTP test email holds a thread, not a process.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# On SIGTERM, requests in progress get this long to finish.
graceful_timeout = 30
keepalive = 5
# Each worker is replaced after about this many requests, so no slow leak grows for ever.
max_requests = 1000
max_requests_jitter = 100
# Errors and start/stop to stderr (the journal); the proxy keeps the access log.
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# Stopped and reloaded by signals (systemd): no control socket in the service's home.
control_socket_disable = True
# Only the proxy on this machine may say which scheme a request came over.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")


def child_exit(server, worker):
    """With PROMETHEUS_MULTIPROC_DIR, forget a finished worker's live figures (its counts stay)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
