"""Where the `callrec dev` stack runs, so that the operator commands find it from any directory.

`callrec dev` writes `$XDG_STATE_HOME/callrec/dev-stack.json` (default `~/.local/state/callrec/`, 0600 in 0700
directories) once it is up: its absolute data dir, its database URL (when one is set), Temporal address and
namespace, the Temporal UI's URL and the API's URL. It stays after the stack stops (the data does too); the last
`callrec dev` wins. `callrec ops` and `callrec consent` fall back to it when neither the environment nor a `.env`
says where the catalog and Temporal are (`operator_settings` in cli.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from callrec.storage.private import FILE_MODE, private_dirs

# The settings that say where a stack is: any of them set by the environment or .env means "that stack".
LOCATION_SETTINGS = ("data_dir", "database_url", "temporal_address")
# What the file records (Settings field names), and what an operator command takes from it.
STACK_SETTINGS = (*LOCATION_SETTINGS, "temporal_namespace", "temporal_ui_url", "api_url")


def stack_file() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "callrec" / "dev-stack.json"


def write_stack(values: dict[str, Any]) -> Path:
    """Records the running dev stack (the STACK_SETTINGS among `values`); written whole, then renamed into place."""
    path = stack_file()
    private_dirs(path.parent)
    recorded = {name: values[name] for name in STACK_SETTINGS if values.get(name) is not None}
    staged = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "w") as file:
        json.dump(recorded | {"pid": os.getpid()}, file, indent=2)
    staged.replace(path)
    return path


def read_stack() -> dict[str, Any]:
    """The recorded dev stack's settings, or {} when there is none (or it cannot be read)."""
    try:
        recorded = json.loads(stack_file().read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(recorded, dict):
        return {}
    return {name: recorded[name] for name in STACK_SETTINGS if isinstance(recorded.get(name), str)}


def find_dotenv(start: Path | None = None) -> Path | None:
    """The nearest `.env` in `start` (default the working directory) or one of its parents."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / ".env"
        if candidate.is_file():
            return candidate
    return None


def missing_sqlite_catalog(url: str) -> Path | None:
    """The file of a SQLite catalog URL when it does not exist (opening it would create an empty one); else None."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    path = Path(database)
    return None if path.is_file() else path.resolve()
