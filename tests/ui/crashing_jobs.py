"""A stand-in for ``pipeline.serve.isolation.analyze_job`` for the dashboard tests: it
really crashes its worker process (a read of address 0: SIGSEGV) for a file whose
bytes start with ``CRASH``, and answers a prepared analysis for any other. Imported by
name in the worker's child process, so it lives in a module of its own."""
from __future__ import annotations

import ctypes
from typing import Any

CRASH = b"CRASH"


def crash_or_answer(answer: Any, request: Any) -> Any:
    if isinstance(request.source, bytes) and request.source.startswith(CRASH):
        ctypes.string_at(0)  # a segmentation fault inside native code, as a broken decoder makes
    return answer
