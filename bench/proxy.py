"""A real nginx (Debian's /usr/sbin/nginx) running deploy/nginx/callrec.conf in front of callrec, on loopback:
for tests/e2e/test_media_offload.py and the `offload` bench group."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

NGINX = Path("/usr/sbin/nginx")
DEPLOY_CONF = Path(__file__).resolve().parents[1] / "deploy" / "nginx" / "callrec.conf"
LOCAL_MEDIA_CONF = DEPLOY_CONF.with_name("media-local.conf")
MEDIA_LOCATION = re.compile(r"    location /_callrec_media/ \{.*?\n    \}\n", re.S)


def local_media_location(objects_dir: Path) -> str:
    """deploy/nginx/media-local.conf, the internal location for a local store, on `objects_dir`."""
    return LOCAL_MEDIA_CONF.read_text().replace("/var/lib/callrec/objects/", f"{objects_dir.resolve()}/")


def server_config(
    api: str, port: int, *, s3_endpoint: str | None = None, objects_dir: Path | None = None, extra: str = ""
) -> str:
    """deploy/nginx/callrec.conf for this machine: the API and the store on loopback, listening on `port`;
    `extra`: more directives for the server block."""
    text = DEPLOY_CONF.read_text()
    text = text.replace("listen 8080;", f"listen 127.0.0.1:{port};").replace("callrec-api:8080", api)
    if objects_dir is not None:
        text, count = MEDIA_LOCATION.subn(local_media_location(objects_dir), text)
        assert count == 1, "deploy/nginx/callrec.conf has no media location"
    # Without S3 the stack's S3 upstream is unused, but nginx resolves every upstream's host at start.
    text = text.replace("minio:9000", s3_endpoint or api)
    head, _, tail = text.rpartition("}")
    return head + extra + "}" + tail


@asynccontextmanager
async def running_nginx(directory: Path, server: str, port: int) -> AsyncIterator[str]:
    """nginx in the foreground with `server` (prefix, pid, temp files and logs under `directory`); its base URL."""
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "nginx.conf"
    temp = "\n".join(
        f"    {kind}_temp_path {directory / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # As root nginx's workers would run as nobody, who cannot read the test's private directories.
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf.write_text(f"""daemon off;
{user}pid {directory / "nginx.pid"};
error_log {directory / "error.log"} info;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {directory / "access.log"};
{temp}
{server}
}}
""")
    process = subprocess.Popen([str(NGINX), "-p", str(directory), "-c", str(conf)], stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                if process.poll() is not None:
                    raise RuntimeError(f"nginx exited: {process.stderr.read().decode() if process.stderr else ''}")
                try:
                    await http.get(f"{base}/health")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            else:
                raise RuntimeError("nginx did not come up")
        yield base
    finally:
        process.terminate()
        process.wait(10)
        if process.stderr:
            process.stderr.close()
