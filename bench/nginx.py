"""A real nginx on loopback: the anchor the media figures are held against (a directory served with sendfile, what a
user would put in front of the recordings' files instead of callrec), and the production proxy
(deploy/nginx/callrec.conf) in front of callrec for the `offload` group and tests/e2e/test_media_offload.py.

Debian's `/usr/sbin/nginx` runs as a plain foreground process of the invoking user, with a config, prefix, pid,
logs and every temp path of its own in a working directory, so it needs no root and touches neither /etc/nginx
nor /var/lib/nginx. One process (`master_process off`), like callrec's one API process: no privilege drop to
`nobody`, who could not read the store's 0600 files, and so no `user` directive to get wrong.

Files are served the way nginx is deployed for this: `sendfile on;`, HTTP/1.1 keep-alive as nginx's default, byte
ranges (nginx answers `Range` on static files by itself). `tcp_nopush` stays off: with it on, every response after
the first on a keep-alive connection ends ~40 ms late (nginx clears TCP_NODELAY to cork the sendfile; once
uncorked, the last partial segment waits for the client's delayed ACK), so a 64 KiB range took 44 ms at p50
instead of 1.1 ms with httpx here, a stall no deployment tuned for small responses would keep. curl does not see
it: each curl run is a new connection.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from bench.common import free_port, spawn, stop_process, wait_http

NGINX = "/usr/sbin/nginx"
MISSING = "nginx not found: the nginx anchor rows are skipped (apt-get install nginx)"
_TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")

DEPLOY_CONF = Path(__file__).resolve().parents[1] / "deploy" / "nginx" / "callrec.conf"
LOCAL_MEDIA_CONF = DEPLOY_CONF.with_name("media-local.conf")
_MEDIA_LOCATION = re.compile(r"    location /_callrec_media/ \{.*?\n    \}\n", re.S)


def find_nginx() -> str | None:
    """The nginx binary: Debian's, else one on PATH; None when there is none."""
    if Path(NGINX).is_file():
        return NGINX
    return shutil.which("nginx")


def file_server(root: Path, port: int) -> str:
    """The http-block content serving ``root`` read-only on 127.0.0.1:``port``."""
    return f"""\
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{
            limit_except GET {{ deny all; }}
        }}
    }}
"""


def local_media_location(objects_dir: Path) -> str:
    """deploy/nginx/media-local.conf, the internal location for a local store, on `objects_dir`."""
    return LOCAL_MEDIA_CONF.read_text().replace("/var/lib/callrec/objects/", f"{objects_dir.resolve()}/")


def proxy_server(
    api: str, port: int, *, s3_endpoint: str | None = None, objects_dir: Path | None = None, extra: str = ""
) -> str:
    """deploy/nginx/callrec.conf for this machine: the API (`host:port`) and the store on loopback, listening on
    `port`; `objects_dir`: a local store's media location instead of S3's; `extra`: more of the server block."""
    text = DEPLOY_CONF.read_text()
    text = text.replace("listen 8080;", f"listen 127.0.0.1:{port};").replace("callrec-api:8080", api)
    if objects_dir is not None:
        text, count = _MEDIA_LOCATION.subn(local_media_location(objects_dir), text)
        assert count == 1, "deploy/nginx/callrec.conf has no media location"
    # Without S3 the stack's S3 upstream is unused, but nginx resolves every upstream's host at start.
    text = text.replace("minio:9000", s3_endpoint or api)
    head, _, tail = text.rpartition("}")
    return head + extra + "}" + tail


def nginx_config(workdir: Path, http: str) -> str:
    """A whole nginx.conf around `http` (the http block's content) with everything it writes under ``workdir``."""
    temp = "\n".join(f"    {name}_temp_path {workdir / 'temp' / name};" for name in _TEMP_PATHS)
    return f"""\
daemon off;
master_process off;
worker_processes 1;
pid {workdir / "nginx.pid"};
error_log {workdir / "error.log"} warn;

events {{
    worker_connections 256;
}}

http {{
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush off;
{temp}

{http}
}}
"""


class Nginx:
    """nginx on 127.0.0.1:``port`` with ``http`` (built by `file_server` or `proxy_server` for that port); ``url``
    is its base. ``async with`` or start/stop; started once ``probe`` answers."""

    def __init__(self, binary: str, workdir: Path, port: int, http: str, probe: str = "/") -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = port
        self.http = http
        self.probe = probe
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    def files(cls, binary: str, root: Path, workdir: Path) -> Nginx:
        """nginx serving ``root`` on a free port."""
        port = free_port()
        return cls(binary, workdir, port, file_server(root, port))

    async def start(self) -> None:
        (self.workdir / "temp").mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "nginx.conf"
        conf.write_text(nginx_config(self.workdir, self.http))
        # -e: the log for startup messages, before the config's error_log applies (else /var/log/nginx/error.log)
        argv = [self.binary, "-p", f"{self.workdir}/", "-c", str(conf), "-e", str(self.workdir / "error.log")]
        self.process = spawn(argv, self.workdir / "nginx.out")
        try:
            await wait_http(f"{self.url}{self.probe}", self.process, timeout=15)
        except RuntimeError as exc:
            logged = [p.read_text(errors="replace").strip() for p in self.workdir.glob("*.log") if p.stat().st_size]
            raise RuntimeError(f"nginx did not start ({exc}): {' '.join(logged) or 'nothing logged'}") from exc

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)

    async def __aenter__(self) -> Nginx:
        try:
            await self.start()
        except BaseException:
            self.stop()
            raise
        return self

    async def __aexit__(self, *_: object) -> None:
        self.stop()
