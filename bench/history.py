"""History on big workbooks, through nginx on the local production stack (stack/local.py):

- the workbook at an earlier revision: a 100,000 x 10 workbook filled through the API, then 1,000 more
  changes through the API (one- to ten-cell `set`s on random cells, a row inserted or deleted every
  50th, an undo every 25th); `GET /api/workbooks/{id}/?rev=R` for R = the revision 1,000 changes back,
  the whole body read, median of 5 (target: under 1.5 s);
- the history of one cell: a 1,000 x 10 workbook given 1,000,000 changes by the write path itself
  (`services.commit_sets`, 500 one-cell `set`s per transaction, in a Django process with the stack's
  settings; every 1,000th writes the measured cell, the rest random others), then
  `GET /api/workbooks/{id}/sheets/1/cells/{row}/{col}/history?limit=1000`, median of 5 (target: under 50 ms).

Results: a table on stdout and JSON in bench/results/history-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path

from bench.bigsheet import COLS, fill_workbook, get_bytes

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PASSWORD = "bench-history-password"
TARGET_REV_S = 1.5
TARGET_CELL_HISTORY_S = 0.05


def changes_through_api(session, workbook_id: int, count: int, seed: int = 7) -> dict:
    """``count`` changes of a working session on the workbook, each a POST through nginx."""
    rng = random.Random(seed)
    status, snap = session.request("GET", f"/api/workbooks/{workbook_id}/")
    if status != 200:
        raise RuntimeError(f"snapshot failed: {status}")
    rows, cols = [r["id"] for r in snap["sheets"][0]["rows"]], [c["id"] for c in snap["sheets"][0]["columns"]]
    started = time.perf_counter()
    for n in range(count):
        if n % 50 == 49:  # a row deleted, and 50 changes later one inserted (the workbook is at the row limit)
            if n % 100 == 49:
                body = {"type": "delete_rows", "rows": [rows.pop(rng.randrange(len(rows)))]}
            else:
                body = {"type": "insert_rows", "before": rng.choice(rows), "count": 1}
        elif n % 25 == 24:
            body = {"type": "undo"}
        else:
            values = [n, f"text {n}", n / 7, True, None]
            cells = [{"row": rng.choice(rows), "col": rng.choice(cols), "value": rng.choice(values)} for _ in range(rng.randint(1, 10))]
            body = {"type": "set", "cells": cells}
        status, answer = session.request("POST", f"/api/workbooks/{workbook_id}/ops", {"op": f"h-{workbook_id}-{n}", "session": "bench", **body})
        if status != 201:
            raise RuntimeError(f"change {n} failed: {status} {answer}")
        if body["type"] == "insert_rows":
            rows += answer["rows"]  # where they are does not matter to the random choices
        elif body["type"] == "undo":  # rows an undo brought back or removed: ask again
            rows = [r["id"] for r in session.request("GET", f"/api/workbooks/{workbook_id}/")[1]["sheets"][0]["rows"]]
    return {"changes": count, "seconds": round(time.perf_counter() - started, 1)}


def time_rev(stack, session, workbook_id: int, back: int, runs: int) -> dict:
    rev = session.request("GET", f"/api/workbooks/{workbook_id}/versions?limit=1")[1]["versions"][0]["rev"]
    at = rev - back
    times, size = [], 0
    for _ in range(runs):
        seconds, size = get_bytes(session.opener, f"{stack.url}/api/workbooks/{workbook_id}/?rev={at}")
        times.append(seconds)
    return {"rev": rev, "at": at, "bytes": size, "runs_s": [round(t, 4) for t in times], "median_s": round(statistics.median(times), 4)}


def log_changes(workbook_id: int, user: str, count: int, every: int, cell: tuple[int, int]) -> dict:
    """Runs in a child process with the stack's settings: ``count`` one-cell `set`s through
    ``services.commit_sets``, 500 per transaction, every ``every``-th on ``cell``."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from workbooks import services
    from workbooks.domain.values import CellWrite, SetCells

    author = get_user_model().objects.get(username=user)
    rng = random.Random(11)
    started = time.perf_counter()
    for first in range(0, count, 500):
        requests = []
        for n in range(first, min(count, first + 500)):
            row, col = cell if n % every == 0 else (rng.randint(1, 1000), rng.randint(1, COLS))
            requests.append((author, SetCells(f"log-{n}", (CellWrite(row, col, n),))))
        results = services.commit_sets(workbook_id=workbook_id, requests=requests)
        if any(isinstance(r, Exception) for r in results):
            raise RuntimeError(f"commit failed: {next(r for r in results if isinstance(r, Exception))}")
    return {"changes": count, "seconds": round(time.perf_counter() - started, 1), "method": "services.commit_sets, 500 one-cell sets a transaction"}


def time_cell_history(stack, session, workbook_id: int, cell: tuple[int, int], runs: int) -> dict:
    times, size = [], 0
    url = f"{stack.url}/api/workbooks/{workbook_id}/sheets/1/cells/{cell[0]}/{cell[1]}/history?limit=1000"
    for _ in range(runs):
        seconds, size = get_bytes(session.opener, url)
        times.append(seconds)
    versions = len(session.request("GET", url.removeprefix(stack.url))[1]["versions"])
    return {"versions": versions, "bytes": size, "runs_s": [round(t, 4) for t in times], "median_s": round(statistics.median(times), 4)}


def run(args) -> dict:
    from stack.local import LocalStack

    result: dict = {
        "benchmark": "history",
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.history " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release()},
        "loadavg_at_start": os.getloadavg(),
        "targets": {"rev_s": TARGET_REV_S, "cell_history_s": TARGET_CELL_HISTORY_S},
    }
    stack = LocalStack()
    try:
        print(f"starting the local stack in {stack.dir} ...", flush=True)
        stack.start()
        session = stack.session("bench", PASSWORD)
        status, snap = session.request("POST", "/api/workbooks/", {"name": f"history {args.rows} x {COLS}", "rows": args.rows, "cols": COLS})
        if status != 201:
            raise RuntimeError(f"creating the workbook failed: {status} {snap}")
        big = snap["id"]
        print(f"filling the {args.rows} x {COLS} workbook ...", flush=True)
        result["fill"] = fill_workbook(session, big, args.rows)
        print(f"{args.back} changes through the API ...", flush=True)
        result["changes"] = changes_through_api(session, big, args.back)
        print(f"GET ?rev=R, {args.back} changes back ...", flush=True)
        result["rev"] = time_rev(stack, session, big, args.back, args.runs)

        status, snap = session.request("POST", "/api/workbooks/", {"name": "long history", "rows": 1000, "cols": COLS})
        if status != 201:
            raise RuntimeError(f"creating the workbook failed: {status} {snap}")
        logged, cell = snap["id"], (500, 5)
        print(f"{args.log:,} changes through services.commit_sets ...", flush=True)
        code = f"import json, bench.history as h; print(json.dumps(h.log_changes({logged}, 'bench', {args.log}, {args.log // 1000}, {cell})))"
        child = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=stack.app_env(), capture_output=True, text=True, timeout=3600)
        if child.returncode != 0:
            raise RuntimeError(child.stderr[-3000:])
        result["log"] = json.loads(child.stdout.strip().splitlines()[-1])
        print("GET the history of one cell ...", flush=True)
        result["cell_history"] = time_cell_history(stack, session, logged, cell, args.runs)
    finally:
        stack.stop()
    result["loadavg_at_end"] = os.getloadavg()
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the big workbook (10 columns)")
    parser.add_argument("--back", type=int, default=1000, help="changes after the filled workbook; ?rev=R goes back over them")
    parser.add_argument("--log", type=int, default=1_000_000, help="changes logged on the second workbook (the cell gets one in 1,000)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, help="the JSON result file (default bench/results/history-<time>.json)")
    args = parser.parse_args(argv)
    result = run(args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = args.out or RESULTS / f"history-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    rev, cell = result["rev"], result["cell_history"]
    print(f"\n?rev=R on {args.rows:,} x {COLS}, {args.back:,} changes back: median {rev['median_s']} s (target < {TARGET_REV_S} s)")
    print(f"history of one cell, {cell['versions']} versions, {args.log:,} changes logged: median {cell['median_s']} s")
    print(f"  (target < {TARGET_CELL_HISTORY_S} s)")
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    with suppress(KeyboardInterrupt):
        sys.exit(main())
