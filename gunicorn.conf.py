"""gunicorn's settings for ragsecure: read by `gunicorn ragsecure.wsgi` run from the project root, and by `make run`.

The worker reads each request on its event loop before a thread takes it (ragsecure/server/worker.py), so
clients that send slowly or never finish cannot hold the threads; its time and size limits are the
RAGSECURE_SERVER_* variables described in the README.
"""

import os

wsgi_app = "ragsecure.wsgi:application"
bind = [os.environ.get("RAGSECURE_BIND", "127.0.0.1:8000")]
worker_class = "ragsecure.server.worker.BufferingThreadWorker"
workers = int(os.environ.get("WEB_CONCURRENCY", "0")) or max(2, (os.cpu_count() or 1) * 2 + 1)
threads = int(os.environ.get("RAGSECURE_THREADS", "4"))
# Idle kept-alive connections wait in the event loop, never in a thread; this long at most.
keepalive = 5
# Trust no peer's X-Forwarded-* headers: the application decides the client IP (RAGSECURE_TRUSTED_PROXIES).
forwarded_allow_ips = ""
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 16384
accesslog = "-"

# mTLS for internal callers: with RAGSECURE_TLS_CERT and RAGSECURE_TLS_KEY set, gunicorn serves TLS; with
# RAGSECURE_TLS_CLIENT_CA as well, every client must present a certificate issued by that CA, and its subject is
# recorded in the request's audit entry (detail.client_cert).
if os.environ.get("RAGSECURE_TLS_CERT") and os.environ.get("RAGSECURE_TLS_KEY"):
    import ssl

    certfile = os.environ["RAGSECURE_TLS_CERT"]
    keyfile = os.environ["RAGSECURE_TLS_KEY"]
    if os.environ.get("RAGSECURE_TLS_CLIENT_CA"):
        ca_certs = os.environ["RAGSECURE_TLS_CLIENT_CA"]
        cert_reqs = ssl.CERT_REQUIRED
