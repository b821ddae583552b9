"""Gunicorn settings for production (`Procfile`); override with GUNICORN_* / PORT env vars.

A lookup spends nearly all its time waiting on upstreams, so each worker runs gevent: a
waiting request holds a greenlet, not an OS thread, and capacity follows upstream latency
instead of a thread count (docs/benchmarks.md has the measurements behind the choice).
"""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gevent")
# Concurrent requests per gevent worker (gthread: threads per worker).
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "1000"))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
# Each request's own deadline (FANOUT_DEADLINE_SECONDS) ends it long before this.
timeout = 30
graceful_timeout = 20
# Keep-alive connections are short so one agent's browser doesn't pin itself to one worker.
keepalive = 2
accesslog = "-"
# Don't log query strings: order IDs are customer data, and tokens must never reach a log.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss'
