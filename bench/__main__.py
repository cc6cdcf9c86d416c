"""Run every benchmark script in this folder, one after another (``make bench``).

Each script prints its figures and writes ``bench/results/<name>.json``; this runner
reports which ran and which failed, and exits non-zero if any failed.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    here = Path(__file__).parent
    scripts = sorted(here.glob("bench_*.py"))
    only = set(sys.argv[1:])
    failed: list[str] = []
    for script in scripts:
        if only and script.stem not in only and script.stem.removeprefix("bench_") not in only:
            continue
        print(f"== {script.name}", flush=True)
        start = time.perf_counter()
        code = subprocess.call([sys.executable, str(script)])
        print(f"== {script.name}: exit {code} in {time.perf_counter() - start:.1f} s", flush=True)
        if code:
            failed.append(script.name)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
