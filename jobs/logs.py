"""Where the `dealsync` command's log lines go: the terminal, and a log file kept between runs.

Everything dealsync says goes through the `dealsync.*` loggers (progress per stream, the
writer's waits and recoveries, each table built), so the terminal, the log file and Dagster's
event log (dagster.yaml's managed_python_loggers) carry the same lines. The terminal shows
INFO and up (DEBUG with --verbose); the file keeps DEBUG, with each failure's traceback.
"""

from __future__ import annotations

import logging
from logging.handlers import RotatingFileHandler
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler

DEFAULT_LOG_FILE = Path(".dealsync/logs/dealsync.log")
_FILE_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_handlers: list[logging.Handler] = []


def configure(console: Console, log_file: Path | None, verbose: bool = False) -> None:
    """Send the dealsync loggers to `console` and `log_file` (replacing an earlier setup)."""
    logger = logging.getLogger("dealsync")
    for handler in _handlers:
        logger.removeHandler(handler)
        handler.close()
    _handlers.clear()
    if console.is_terminal:
        terminal: logging.Handler = RichHandler(console=console, show_path=False, markup=False,
                                                rich_tracebacks=verbose, log_time_format="%H:%M:%S")
    else:                      # a pipe or a service's journal: one plain line per record
        terminal = logging.StreamHandler(console.file)
        terminal.setFormatter(logging.Formatter(_FILE_FORMAT))
    terminal.setLevel(logging.DEBUG if verbose else logging.INFO)
    _handlers.append(terminal)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        file = RotatingFileHandler(log_file, maxBytes=10 * 2**20, backupCount=5, encoding="utf-8")
        file.setFormatter(logging.Formatter(_FILE_FORMAT))
        file.setLevel(logging.DEBUG)
        _handlers.append(file)
    for handler in _handlers:
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
