"""An RQ worker for every Tenantry queue, inside an app context: python worker.py [queue …].

`python worker.py webhooks` runs an RQ SimpleWorker (jobs in the worker process, no fork per job), so
webhook deliveries reuse HTTP connections across jobs (see app/webhooks/delivery.py); every other mix of
queues runs RQ's forking Worker.
"""

from __future__ import annotations

import sys

from rq import SimpleWorker, Worker

from app import create_app
from app.queue import QUEUES, get_redis

NO_FORK_QUEUES = {"webhooks"}  # jobs that keep a connection pool across jobs


def main(queues: list[str]) -> None:
    app = create_app()
    with app.app_context():
        names = queues or list(QUEUES)
        worker_class = SimpleWorker if set(names) <= NO_FORK_QUEUES else Worker
        worker_class(names, connection=get_redis()).work(with_scheduler=False)


if __name__ == "__main__":
    main(sys.argv[1:])
