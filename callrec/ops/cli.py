"""The `callrec ops` command line: its arguments (`configure`), and running one command (`execute`, `main`)."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from callrec.domain.settings import Settings
from callrec.ops.base import UnknownRecording
from callrec.ops.commands import Ops
from callrec.ops.output import format_abort, format_list, format_retry, format_show, workflow_url
from callrec.ops.reset import RETRY_REASON
from callrec.ops.retry import RetryRefused
from callrec.storage.dev_stack import missing_sqlite_catalog, stack_file
from callrec.temporal import TemporalUnavailable, temporal_errors

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
SHOWN_EVENTS = 15


def since_ms(text: str, now: datetime | None = None) -> int:
    """`--since`: a duration back from now (30m, 24h, 7d) or an ISO 8601 time (UTC unless it names its zone)."""
    if match := _DURATION.match(text):
        moment = (now or datetime.now(UTC)) - timedelta(seconds=int(match[1]) * _UNIT_S[match[2]])
    else:
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is neither a duration (30m, 24h, 7d) nor an ISO time (2026-12-01T08:00Z)"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _events(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of events (0: all)")
    return int(text)


def positive_count(text: str) -> int:
    """`--limit`: a whole number from 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1")
    return int(text)


def seconds(text: str) -> float:
    """`--wait`, `--min-age`: seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 10**9:  # NaN and inf too
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (0 or more)")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    """Adds the `ops` subcommands to `parser` (cli.py's `ops` parser, or a test's own)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON instead of text")
    sub = parser.add_subparsers(dest="ops_command", required=True)
    listing = sub.add_parser("list", parents=[common], help="recordings from the catalog, newest first")
    listing.add_argument("--status", choices=["starting", "active", "ending", "complete", "failed", "aborted",
                                              "limit_reached"])  # fmt: skip
    listing.add_argument("--room", help="room id")
    listing.add_argument(
        "--since",
        type=since_ms,
        help="only those created since: a duration back from now (30m, 24h, 7d) or an ISO time",
    )
    listing.add_argument("--limit", type=positive_count, default=50)
    show = sub.add_parser(
        "show", parents=[common], help="the error, the workflow's link in the Temporal UI, its state and last events"
    )
    show.add_argument("recording_id")
    show.add_argument(
        "--events",
        type=_events,
        default=SHOWN_EVENTS,
        help=f"last history events shown (default {SHOWN_EVENTS}; 0: all)",
    )
    abort = sub.add_parser("abort", parents=[common], help="stop a stuck recording (end signal, then terminate)")
    abort.add_argument("recording_id")
    abort.add_argument("--reason", default="aborted by an operator")
    abort.add_argument("--wait", type=seconds, default=10.0, help="seconds to wait for the workflow to end itself")
    retry = sub.add_parser(
        "retry", parents=[common], help="retry a failed or aborted recording from its last good step (Temporal reset)"
    )
    retry.add_argument("recording_id")
    retry.add_argument("--reason", default=RETRY_REASON, help="the reset's reason, kept in the workflow's history")
    retry.add_argument(
        "--wait",
        type=seconds,
        default=10.0,
        help="seconds to wait for the old run to close (its last steps), then for the new one to take over",
    )
    reconcile = sub.add_parser("reconcile", parents=[common], help="repair catalog rows and staging objects now")
    reconcile.add_argument("--min-age", type=seconds, default=None, help="seconds; default CALLREC_RECONCILE_MIN_AGE_S")


async def execute(args: argparse.Namespace, ops: Ops, settings: Settings, out: TextIO = sys.stdout) -> int:
    """Runs one parsed `ops` command; returns the exit status."""
    try:
        with temporal_errors():
            result, text = await _command(args, ops, settings)
    except (UnknownRecording, RetryRefused) as err:
        print(f"callrec ops: {err}", file=sys.stderr)
        return 1
    except TemporalUnavailable as err:
        return temporal_unavailable(settings, err)
    print(json.dumps(result, indent=2) if args.json else text, file=out)
    return 0


async def _command(args: argparse.Namespace, ops: Ops, settings: Settings) -> tuple[Any, str]:
    """The command's result (what `--json` prints) and its text."""
    result: Any
    if args.ops_command == "list":
        result = await ops.list_recordings(status=args.status, room=args.room, since_ms=args.since, limit=args.limit)
        return result, format_list(result)
    if args.ops_command == "show":
        result = await ops.show(args.recording_id, events=args.events)
        if result["workflow"] is not None:
            result["workflowUrl"] = workflow_url(settings, args.recording_id, result["workflow"]["runId"])
        return result, format_show(result)
    if args.ops_command == "abort":
        result = await ops.abort(args.recording_id, reason=args.reason, wait_s=args.wait)
        return result, format_abort(result)
    if args.ops_command == "retry":
        result = await ops.retry(args.recording_id, reason=args.reason, wait_s=args.wait)
        return result, format_retry(result)
    min_age = args.min_age if args.min_age is not None else settings.reconcile_min_age_s
    report = await ops.reconcile(min_age_s=min_age)
    return report.model_dump(mode="json", by_alias=True), report.summary()


def temporal_unavailable(settings: Settings, err: TemporalUnavailable) -> int:
    """One line on stderr instead of a traceback: where callrec looked for Temporal, and the setting that says so."""
    why = " ".join(str(err).split())
    print(
        f"callrec ops: Temporal at {settings.temporal_address} is not available ({why}); is it running, "
        "and is CALLREC_TEMPORAL_ADDRESS its address?",
        file=sys.stderr,
    )
    return 1


def catalog_missing(command: str, settings: Settings) -> bool:
    """True, with one line on stderr, when the SQLite catalog the settings name does not exist: opening it would
    create an empty one (a stray `.callrec/` in the working directory) and show nothing."""
    path = missing_sqlite_catalog(settings.catalog_url)
    if path is None:
        return False
    print(
        f"callrec {command}: no catalog at {path}: set CALLREC_DATA_DIR (or CALLREC_DATABASE_URL) to the stack's, "
        f"in the environment or a .env, or start the stack with `callrec dev` (it records where it runs in "
        f"{stack_file()})",
        file=sys.stderr,
    )
    return True


def catalog_unavailable(command: str, settings: Settings, err: Exception) -> int:
    """One line on stderr for a catalog that cannot be read (database down, no schema), its password hidden."""
    url = make_url(settings.catalog_url).render_as_string(hide_password=True)
    why = " ".join(str(getattr(err, "orig", None) or err).split())
    hint = "; run `callrec migrate`" if "no such table" in why or "relation" in why else ""
    print(f"callrec {command}: the catalog at {url} cannot be read ({why}){hint}", file=sys.stderr)
    return 1


async def run(args: argparse.Namespace, settings: Settings, out: TextIO = sys.stdout) -> int:
    if catalog_missing("ops", settings):
        return 2
    try:
        async with Ops.connect(settings) as ops:
            return await execute(args, ops, settings, out)
    except TemporalUnavailable as err:  # could not connect
        return temporal_unavailable(settings, err)
    except (DBAPIError, ConnectionError) as err:  # the database is down, refuses us, or has no schema
        return catalog_unavailable("ops", settings, err)


def main(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(run(args, settings))
