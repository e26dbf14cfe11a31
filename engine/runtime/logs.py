"""One log format for every process of a site (app servers, workers, the scheduler).

`CRM_LOG_FORMAT=json` writes one JSON object a line (python-json-logger), for a log
collector; the default is one readable line. `CRM_LOG_LEVEL` sets the level (default INFO).
The web app logs one line per request to the logger "crm.access" (web/health.py), with the
request id it also returns in `X-Request-ID`.
"""

from __future__ import annotations

import logging
import os

FORMAT_ENV, LEVEL_ENV = "CRM_LOG_FORMAT", "CRM_LOG_LEVEL"
TEXT = "%(asctime)s %(levelname)s %(name)s %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(process)d %(threadName)s"
_HANDLER_MARK = "_crm_handler"


def configure_logging(stream=None) -> None:
    """Send the root logger's records to stderr (or `stream`) in the site's log format; calling
    it again replaces the handler it added before (not those of others, e.g. gunicorn's)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream)
    setattr(handler, _HANDLER_MARK, True)
    handler.setFormatter(formatter())
    root.addHandler(handler)
    level = os.environ.get(LEVEL_ENV, "INFO").upper()
    root.setLevel(level if level in logging.getLevelNamesMapping() else "INFO")


def formatter() -> logging.Formatter:
    if os.environ.get(FORMAT_ENV, "").strip().lower() == "json":
        from pythonjsonlogger.json import JsonFormatter
        return JsonFormatter(JSON_FIELDS, rename_fields={"asctime": "time", "levelname": "level",
                                                         "name": "logger"})
    return logging.Formatter(TEXT)
