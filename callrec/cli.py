"""`callrec dev | api | worker | recorder | migrate | ops | consent`, `callrec --version`.

Each command's `--help` lists the `CALLREC_*` settings it reads, from the descriptions in `Settings` (one source
of truth). A Temporal that does not answer, or a setting that does not parse, is one line naming what to change,
never a traceback. The operator commands (`ops`, `consent`) also read the nearest `.env`, and else the stack
`callrec dev` recorded, so that they work from any directory (`operator_settings`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import textwrap
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from callrec import logs, ops
from callrec.domain.settings import Settings
from callrec.ops import consent
from callrec.storage.dev_stack import LOCATION_SETTINGS, find_dotenv, read_stack
from callrec.temporal import TemporalUnavailable
from callrec.tracing import configure_tracing, shutdown_tracing

# What each command reads besides the settings no list names (those are shown for every command but migrate).
_STORAGE = {"data_dir", "database_url", "s3_endpoint", "s3_access_key", "s3_secret_key", "s3_bucket", "s3_secure",
            "s3_region"}  # fmt: skip
_TEMPORAL = {"temporal_address", "temporal_namespace", "task_queue"}  # and any other temporal_* but the UI port
_RECORDINGS = {"start_timeout_s", "upload_timeout_s", "late_upload_window_s", "update_timeout_s", "max_duration_s",
               "recorder_silence_timeout_s", "share_offer_expiry_s", "webhooks"}  # fmt: skip
COMMAND_SETTINGS: dict[str, set[str]] = {
    "api": _STORAGE | _TEMPORAL | _RECORDINGS | {
        "api_key", "recording_secret", "token_secret", "dev_mode", "user_token_ttl_s", "member_token_ttl_s",
        "public_url", "api_host", "api_port", "api_url", "livekit_api_key", "livekit_api_secret", "max_upload_bytes",
        "bruteforce_max_failures", "bruteforce_window_s", "recorder_nonce_ttl_s", "max_concurrent_uploads",
        "upload_idle_timeout_s", "upload_body_timeout_s", "cors_origins", "publish_secret", "publish_token_ttl_s",
        "egress", "whip_ice_servers", "trusted_proxies", "recording_consent", "metrics_token", "metrics_public",
    },
    "worker": _STORAGE | _TEMPORAL | {
        "egress", "talk_recording_server", "livekit_url", "livekit_api_key", "livekit_api_secret",
        "recording_secret", "api_url", "public_url", "reconcile_every_s", "reconcile_min_age_s", "webhooks",
        "metrics_token", "metrics_public", "worker_metrics_host", "worker_metrics_port", "temporal_metrics_port",
    },
    "recorder": (_STORAGE - {"database_url"}) | {
        "data_dir", "recording_secret", "api_url", "public_url", "recorder_host", "recorder_port", "recorder_url",
        "recorder_id", "recorder_capacity", "segment_s",
        "recorder_silence_timeout_s", "recorder_backends", "recorder_replay_max_entries", "recorder_nonce_ttl_s",
        "publish_secret", "max_publishers_per_room", "whip_ice_servers", "whip_connect_timeout_s",
        "whip_media_timeout_s", "metrics_token", "metrics_public",
    },
    "migrate": {"data_dir", "database_url"},
    "consent": {"data_dir", "database_url"},
    "ops": _STORAGE | _TEMPORAL | {"reconcile_min_age_s", "temporal_ui_url"},
}  # fmt: skip
SECRET_SUFFIXES = ("_key", "_secret", "_password")


def settings_read(command: str) -> list[str]:
    """The Settings fields `command` reads, in their declaration order; `dev` reads them all (it runs every part)."""
    known = set().union(*COMMAND_SETTINGS.values())
    chosen = []
    for name in Settings.model_fields:
        temporal = name.startswith("temporal_") and name not in ("temporal_ui_port", "temporal_ui_url")
        if (
            command == "dev"
            or name in COMMAND_SETTINGS[command]
            or (temporal and command in ("api", "worker", "ops", "recorder"))
            or (name not in known and not temporal and command not in ("migrate", "consent"))
        ):
            chosen.append(name)
    return chosen


def _default(name: str, info: FieldInfo) -> str:
    if name.endswith(SECRET_SUFFIXES) or name == "webhooks":
        return "secret" + ("" if info.default is None else ", has a default")
    if info.default is PydanticUndefined:
        return "derived"  # a default_factory: its description says from what
    if info.default is None:
        return "default unset"
    if isinstance(info.default, bool):
        return f"default {str(info.default).lower()}"
    if isinstance(info.default, float) and info.default.is_integer():
        return f"default {int(info.default)}"
    if isinstance(info.default, Path | str):
        return f"default {info.default}" if str(info.default) else "default empty"
    return f"default {info.default!r}"


def settings_epilog(command: str) -> str:
    """What `callrec <command> --help` prints after the options: each setting, its default and description."""
    lines = [f"settings read by `callrec {command}` (environment variables; secrets' values are never shown):"]
    for name in settings_read(command):
        info = Settings.model_fields[name]
        lines.append(f"  CALLREC_{name.upper()}  ({_default(name, info)})")
        if info.description:
            lines += textwrap.wrap(info.description, width=100, initial_indent=" " * 6, subsequent_indent=" " * 6)
    return "\n".join(lines)


def package_version() -> str:
    try:
        return version("callrec")
    except PackageNotFoundError:  # a source tree that is not installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="callrec", description="Durable call-recording service")
    parser.add_argument("--version", action="version", version=f"callrec {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=settings_epilog(name),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    command("dev", "run Temporal, the worker, the API and the recorder until Ctrl-C")
    command("api", "serve the REST and recorder-backend API")
    command("worker", "run the Temporal worker")
    recorder = command(
        "recorder",
        "serve a built-in recorder of the pool (SIGTERM drains it: it takes nothing new and stops once its "
        "recordings end); `callrec recorder drain` drains the one at CALLREC_RECORDER_URL",
    )
    recorder.add_argument("action", nargs="?", choices=["serve", "drain"], default="serve")
    command("migrate", "create or upgrade the catalog schema")
    ops.configure(command("ops", "operator tools: list, show, abort, retry, reconcile recordings"))
    consent.configure(command("consent", "the recording consent log: who agreed to be recorded, when, in which call"))
    return parser


OPERATOR_COMMANDS = ("ops", "consent")


def operator_settings() -> Settings:
    """What `callrec ops` and `callrec consent` read, from any directory: the environment, then the nearest `.env`
    (the working directory or a parent); when neither says where the catalog and Temporal are, the stack that
    `callrec dev` recorded (`storage/dev_stack.py`), never a `.callrec/` relative to the working directory."""
    env_file = find_dotenv()
    settings = Settings(_env_file=env_file)
    if settings.model_fields_set & set(LOCATION_SETTINGS):
        return settings
    recorded = read_stack()
    return Settings(_env_file=env_file, **recorded) if recorded else settings


def load_settings(command: str) -> Settings:
    """The settings from the environment; one line per setting that does not parse, then exit 2."""
    try:
        return operator_settings() if command in OPERATOR_COMMANDS else Settings()
    except ValidationError as err:
        for error in err.errors():
            if error["type"] == "default_factory_not_called":  # follows from another setting's error
                continue
            name = f"CALLREC_{str(error['loc'][0]).upper()}" if error["loc"] else "settings"
            print(f"callrec {command}: {name}: {error['msg']}", file=sys.stderr)
        raise SystemExit(2) from None


def temporal_unavailable(command: str, settings: Settings, err: TemporalUnavailable) -> None:
    """One line instead of a traceback: where callrec looked for Temporal, and the setting that says so."""
    why = " ".join(str(err).split())
    print(
        f"callrec {command}: Temporal at {settings.temporal_address} does not answer: is it running, and is "
        f"CALLREC_TEMPORAL_ADDRESS its address? ({why})",
        file=sys.stderr,
    )
    raise SystemExit(1)


def refuse_a_busy_port(command: str, host: str, port: int, setting: str) -> None:
    """One line instead of the HTTP server's traceback, before anything starts (a recorder would register first)."""
    from callrec.dev import bind_error

    err = bind_error(host, port)
    if err is not None:
        print(f"callrec {command}: cannot listen on {host}:{port} ({err.strerror}): set {setting}", file=sys.stderr)
        raise SystemExit(1)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    settings = load_settings(args.command)
    logs.configure(args.command, settings.log_format, settings.log_level)
    try:
        try:
            run(args, settings)
        except TemporalUnavailable as err:
            temporal_unavailable(args.command, settings, err)
        except KeyboardInterrupt:  # Ctrl-C before a command's own handler is in place: stop, without a traceback
            raise SystemExit(130) from None
    except SystemExit as done:
        if args.command == "migrate":  # no Temporal client: an ordinary exit
            raise
        status = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        if not isinstance(done.code, int | None):
            print(done.code, file=sys.stderr)
        _exit(status)
    if args.command != "migrate":
        _exit(0)


def _exit(status: int) -> None:
    """Ends the process without interpreter teardown, once output is flushed: the Temporal SDK's Rust threads
    can abort a finalizing interpreter ("Fatal Python error: PyGILState_Release", temporalio/sdk-python#300)."""
    shutdown_tracing()  # the spans still buffered go out: no atexit handler runs after os._exit
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def run(args: argparse.Namespace, settings: Settings) -> None:
    if args.command in ("api", "worker") or (args.command == "recorder" and args.action == "serve"):
        configure_tracing(f"callrec-{args.command}")  # when OTEL_EXPORTER_OTLP_ENDPOINT is set
    if args.command == "dev":
        from callrec.dev import run_dev

        run_dev(settings)
    elif args.command == "ops":
        raise SystemExit(ops.main(args, settings))
    elif args.command == "consent":
        raise SystemExit(consent.main(args, settings))
    elif args.command == "migrate":
        from callrec.storage.catalog import migrate

        asyncio.run(migrate(settings))
    elif args.command == "worker":
        from callrec.worker.main import main as worker_main

        worker_main(settings)
    else:
        from callrec import event_loop, servers

        if args.command == "api":
            refuse_a_busy_port("api", settings.api_host, settings.api_port, "CALLREC_API_PORT")
            event_loop.run(servers.run_api(settings, servers.until_signalled()))
        elif getattr(args, "action", None) == "drain":
            from callrec.recorder.pool import request_drain

            print(json.dumps(asyncio.run(request_drain(settings.recorder_url, settings.require_recording_secret()))))
        else:
            refuse_a_busy_port("recorder", settings.recorder_host, settings.recorder_port, "CALLREC_RECORDER_PORT")
            event_loop.run(servers.run_recorder(settings))


if __name__ == "__main__":
    main()
