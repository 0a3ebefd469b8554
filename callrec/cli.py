"""`callrec dev | api | worker | recorder | migrate | ops`."""

from __future__ import annotations

import argparse
import asyncio
import logging

from callrec import ops
from callrec.domain.settings import Settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="callrec", description="Durable call-recording service")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("dev", help="run Temporal, the worker, the API and the recorder until Ctrl-C")
    sub.add_parser("api", help="serve the REST and recorder-backend API")
    sub.add_parser("worker", help="run the Temporal worker")
    sub.add_parser("recorder", help="serve the built-in recorder")
    sub.add_parser("migrate", help="create or upgrade the catalog schema")
    ops.configure(sub.add_parser("ops", help="operator tools: list, show, abort, retry, reconcile recordings"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = Settings()

    if args.command == "dev":
        from callrec.dev import run_dev

        run_dev(settings)
    elif args.command == "ops":
        raise SystemExit(ops.main(args, settings))
    elif args.command == "migrate":
        from callrec.storage.catalog import migrate

        asyncio.run(migrate(settings))
    elif args.command == "worker":
        from callrec.worker.main import main as worker_main

        worker_main(settings)
    else:
        from callrec import servers

        runner = servers.run_api if args.command == "api" else servers.run_recorder
        asyncio.run(runner(settings, servers.until_signalled()))


if __name__ == "__main__":
    main()
