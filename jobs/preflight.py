"""What a run checks before it starts: every secret it will need is set, every server answers.

A missing variable or a dead host found here costs a second and names every problem at once;
found by the pull that needs it, it costs the steps before it and names only the first.
Reachability is a TCP connection (through the HTTPS proxy the environment names, if any),
not a login: a refused login still fails its own pull, with the vendor's reason.
"""

from __future__ import annotations

import os
import socket
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import requests

from jobs.config import DealsyncConfig

CONNECT_TIMEOUT_SECONDS = 10.0


def problems(config: DealsyncConfig) -> list[str]:
    """One line per problem: a source's unset variables, an unreachable server."""
    sources = {name: getattr(config.sources, name) for name in config.configured_sources()}
    found = [_missing(name, settings.secrets()) for name, settings in sources.items()]
    pg = config.warehouse.postgres
    if config.warehouse.backend == "postgres" and pg.password_env:
        found.append(_missing("warehouse", {pg.password_env: "PostgreSQL password"}))
    found.append(_missing("privacy", config.privacy.secrets()))
    targets = [(name, url) for name, settings in sources.items() for url in dict.fromkeys(settings.endpoints())]
    with ThreadPoolExecutor(max_workers=8) as pool:
        found += pool.map(lambda target: _unreachable(*target), targets)
    return [line for line in found if line]


def _missing(source: str, secrets: dict[str, str]) -> str | None:
    unset = [f"{name} ({purpose})" for name, purpose in secrets.items() if not os.environ.get(name)]
    if not unset:
        return None
    return f"{source}: environment variable{'s' if len(unset) > 1 else ''} {', '.join(unset)} not set"


def _unreachable(source: str, url: str) -> str | None:
    proxy = requests.utils.get_environ_proxies(url).get(urlsplit(url).scheme)
    parts = urlsplit(proxy or url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=CONNECT_TIMEOUT_SECONDS).close()
    except OSError as exc:
        via = f" through the proxy {parts.hostname}:{port}" if proxy else ""
        return f"{source}: cannot reach {url}{via} ({_reason(exc)})"
    return None


def _reason(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return f"no answer within {CONNECT_TIMEOUT_SECONDS:.0f} s"
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    return exc.strerror or type(exc).__name__
