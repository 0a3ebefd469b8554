"""nginx serving a directory, as the anchor the media figures are held against: what a user would put in front of
the recordings' files instead of callrec.

Debian's `/usr/sbin/nginx` runs as a plain foreground process of the invoking user, with a config, prefix, pid,
logs and every temp path of its own in a working directory, so it needs no root and touches neither /etc/nginx
nor /var/lib/nginx. It serves files the way nginx is deployed for this: `sendfile on;`, HTTP/1.1
keep-alive as nginx's default, byte ranges (nginx answers `Range` on static files by itself).

`tcp_nopush` stays off: with it on, every response after the first on a keep-alive connection ends ~40 ms late
(nginx clears TCP_NODELAY to cork the sendfile; once uncorked, the last partial segment waits for the client's
delayed ACK), so a 64 KiB range took 44 ms at p50 instead of 1.1 ms with httpx here, a stall no deployment
tuned for small responses would keep. curl does not see it: each curl run is a new connection.

One process (`master_process off`), like callrec's one API process: no privilege drop to `nobody`, who could not
read the store's 0600 files, and so no `user` directive to get wrong.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from bench.common import free_port, spawn, stop_process, wait_http

NGINX = "/usr/sbin/nginx"
MISSING = "nginx not found: the nginx anchor rows are skipped (apt-get install nginx)"
_TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def find_nginx() -> str | None:
    """The nginx binary: Debian's, else one on PATH; None when there is none."""
    if Path(NGINX).is_file():
        return NGINX
    return shutil.which("nginx")


def nginx_config(root: Path, port: int, workdir: Path) -> str:
    """An nginx.conf serving ``root`` read-only on 127.0.0.1:``port``, with everything it writes under ``workdir``."""
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

    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{
            limit_except GET {{ deny all; }}
        }}
    }}
}}
"""


class Nginx:
    """nginx serving ``root`` on a free loopback port; ``url`` is its base. ``async with`` or start/stop."""

    def __init__(self, binary: str, root: Path, workdir: Path) -> None:
        self.binary = binary
        self.root = root
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        (self.workdir / "temp").mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "nginx.conf"
        conf.write_text(nginx_config(self.root, self.port, self.workdir))
        # -e: the log for startup messages, before the config's error_log applies (else /var/log/nginx/error.log)
        argv = [self.binary, "-p", f"{self.workdir}/", "-c", str(conf), "-e", str(self.workdir / "error.log")]
        self.process = spawn(argv, self.workdir / "nginx.out")
        try:
            await wait_http(f"{self.url}/", self.process, timeout=15)
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
