"""Gunicorn settings for production (`Procfile`); override with GUNICORN_* / PORT env vars."""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Requests mostly wait on upstreams, so threads per worker beat more processes.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
timeout = 30
graceful_timeout = 20
accesslog = "-"
# Don't log query strings: order IDs are customer data, and tokens must never reach a log.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss'
