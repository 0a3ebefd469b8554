"""`callrec consent list --room R`: the recording consent log (Talk's `occ talk:recording:consent`).

Who agreed to be recorded when joining a room's call, when, and which call (by its start). A row is written at
each join with consent while CALLREC_RECORDING_CONSENT is not 0, and deleted with the room. Exit status: 1 for an
actor filter without both its parts or a database that cannot be read, 2 for an unknown room or no catalog.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from sqlalchemy.exc import DBAPIError

from callrec.domain.settings import Settings
from callrec.ops.cli import catalog_missing, catalog_unavailable, positive_count
from callrec.ops.output import iso
from callrec.storage.catalog import Catalog
from callrec.storage.rows import ConsentRow
from callrec.storage.talk_rooms import TalkRooms


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    listing = sub.add_parser("list", help="the consents given, oldest first")
    listing.add_argument("--room", help="only this room's")
    listing.add_argument("--actor-type", help="only this actor's (with --actor-id): users or guests")
    listing.add_argument("--actor-id", help="only this actor's (with --actor-type)")
    listing.add_argument("--limit", type=positive_count, default=1000, help="at most this many (default 1000)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")


def view(row: ConsentRow) -> dict[str, object]:
    return {
        "roomId": row.room_id,
        "actorType": row.actor_type,
        "actorId": row.actor_id,
        "timestamp": row.timestamp // 1000,
        "callStarted": row.call_started,
    }


async def listed(args: argparse.Namespace, settings: Settings) -> int:
    catalog = Catalog.from_url(settings.catalog_url)
    try:
        if args.room is not None and await catalog.get_room(args.room) is None:
            print(f"callrec consent: no room {args.room!r}", file=sys.stderr)
            return 2
        actor = (args.actor_type, args.actor_id) if args.actor_type is not None else None
        rows = await TalkRooms(catalog).consents(args.room, actor, limit=max(1, min(args.limit, 100_000)))
    finally:
        await catalog.close()
    if not rows and not args.json:  # JSON lines: none for none
        print("no consents")
    for row in rows:
        if args.json:
            print(json.dumps(view(row)))
        else:
            call = iso(row.call_started) or "-"
            print(f"{iso(row.timestamp)}  {row.room_id}  {row.actor_type}/{row.actor_id}  call {call}")
    return 0


def main(args: argparse.Namespace, settings: Settings) -> int:
    if (args.actor_type is None) != (args.actor_id is None):
        print("callrec consent: --actor-type and --actor-id go together", file=sys.stderr)
        return 1
    if catalog_missing("consent", settings):
        return 2
    try:
        return asyncio.run(listed(args, settings))
    except (DBAPIError, ConnectionError) as err:  # the database is down, refuses us, or has no schema
        return catalog_unavailable("consent", settings, err)
