"""gunicorn settings (scripts/run: gunicorn -c python:app.ops.gunicorn_conf wsgi:app).

With PROMETHEUS_MULTIPROC_DIR set, prometheus_client's multiprocess mode: the directory must be emptied
before any process of the host starts (scripts/run does; samples of an earlier run would be added up
again), and a worker that exits is marked dead here so its live gauges stop counting (its counters stay:
/metrics adds every process's up).
"""

from __future__ import annotations

import os


def on_starting(server) -> None:
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        os.makedirs(folder, exist_ok=True)


def child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
