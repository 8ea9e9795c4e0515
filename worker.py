"""An RQ worker for every Tenantry queue, inside an app context: python worker.py [queue …]."""

from __future__ import annotations

import sys

from rq import Worker

from app import create_app
from app.queue import QUEUES, get_redis


def main(queues: list[str]) -> None:
    app = create_app()
    with app.app_context():
        Worker(queues or list(QUEUES), connection=get_redis()).work(with_scheduler=False)


if __name__ == "__main__":
    main(sys.argv[1:])
