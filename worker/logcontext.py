"""Structured worker logs: every line names the job, user and mode it belongs to."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from celery.signals import after_setup_logger, after_setup_task_logger

_context: ContextVar[tuple[tuple[str, str], ...]] = ContextVar("osutrack_log_context", default=())

LOG_FORMAT = (
    "%(asctime)s %(levelname)s %(processName)s %(name)s "
    "job=%(job_id)s user=%(user_id)s mode=%(mode)s %(message)s"
)
FIELDS = ("job_id", "user_id", "mode")


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Tag log lines emitted inside the block with `fields` (job_id, user_id, mode)."""
    token = _context.set(tuple((key, str(value)) for key, value in fields.items()))
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Adds the current job fields (or "-") to every record, so the format never fails."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = dict(_context.get())
        for name in FIELDS:
            if not hasattr(record, name):
                setattr(record, name, current.get(name, "-"))
        return True


@after_setup_logger.connect
@after_setup_task_logger.connect
def install_context_format(logger: logging.Logger, **_: Any) -> None:
    """Give Celery's handlers the job-tagged format once Celery has set them up."""
    for handler in logger.handlers:
        handler.addFilter(ContextFilter())
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
    # urllib3 logs every request line at DEBUG, and osu! API v1 carries the API key in
    # its query string: keep those lines out even when LOG_LEVEL=DEBUG.
    logging.getLogger("urllib3").setLevel(max(logging.INFO, logging.getLogger().level))
