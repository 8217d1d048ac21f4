"""Python peer for the beacon bench: Flask + prometheus_client under gunicorn.

Same contract as `beacon serve`. Durability: each visit takes an exclusive
fcntl.flock on the counter file (shared by all gunicorn worker processes), reads
the count, writes count + 1, os.fsync()s, and only then answers — one fsync per
visit, no batching, no increments lost across workers.

Metrics use prometheus_client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set
by bench/targets.py) so /metrics sums all workers.
"""

import fcntl
import os
import struct

from flask import Flask, Response, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest, multiprocess

DATA_DIR = os.environ.get("PEER_DATA_DIR", "data")
os.makedirs(DATA_DIR, exist_ok=True)
PATH = os.path.join(DATA_DIR, "visits")

VISITS = Counter("peer_visits_total", "Visits recorded durably.")
REQUESTS = Counter("peer_http_requests_total", "HTTP requests.", ["code"])

app = Flask(__name__)
_fd = None  # opened lazily, once per worker process (after gunicorn forks)


def _file():
    global _fd
    if _fd is None:
        _fd = os.open(PATH, os.O_RDWR | os.O_CREAT, 0o644)
    return _fd


def _read(fd):
    raw = os.pread(fd, 8, 0)
    return struct.unpack("<Q", raw)[0] if len(raw) == 8 else 0


def record_visit():
    fd = _file()
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        count = _read(fd) + 1
        os.pwrite(fd, struct.pack("<Q", count), 0)
        os.fsync(fd)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
    return count


@app.after_request
def _count(resp):
    REQUESTS.labels(str(resp.status_code)).inc()
    return resp


@app.get("/")
def index():
    count = record_visit()
    VISITS.inc()
    return ("<!doctype html><html><body><h1>python peer</h1>"
            f'<p>visits: <strong id="visits">{count}</strong></p></body></html>\n')


@app.get("/visits")
def visits():
    fd = _file()
    fcntl.flock(fd, fcntl.LOCK_SH)
    try:
        return jsonify(visits=_read(fd))
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


@app.get("/healthz")
def healthz():
    return Response("ok\n", mimetype="text/plain")


@app.get("/metrics")
def metrics():
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
