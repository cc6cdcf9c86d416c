"""Numeric settings read from environment variables (``AVE_*``), checked: a value that is
not a positive number falls back to the default, with a warning for one that is not a
number at all."""
from __future__ import annotations

import logging
import os
from typing import Any, Mapping

log = logging.getLogger(__name__)


def positive_seconds(name: str, default: float, environ: Mapping[str, Any] | None = None) -> float:
    """The variable ``name`` of ``environ`` (default ``os.environ``) as a positive number of
    seconds, else ``default`` (unset, empty, zero, negative, or not a number: logged)."""
    raw = (os.environ if environ is None else environ).get(name, "")
    try:
        value = float(raw) if str(raw).strip() else default
    except ValueError:
        log.warning("%s=%r is not a number; using %g s", name, raw, default)
        return default
    return value if value > 0 else default
