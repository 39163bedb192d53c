"""Every benchmark of the issue, one after the other, and one report of all its targets.

    python -m bench.all

Runs `bench.fanout --suite`, `bench.sockets`, `bench.bigsheet`, `bench.history` and `bench.formulas`
(each starts and stops its own local stack, one at a time, so they never compete for the machine),
then reads their JSON results and prints one table: each target, what was measured, met or not. The
results and the table go to bench/results/all-<time>.json. A benchmark that fails is reported as
such; the others still run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = RESULTS.parent.parent

BENCHMARKS = (  # module, its arguments, the option naming its JSON result file
    ("bench.fanout", ["--suite"], "--output"),
    ("bench.sockets", [], "--out"),
    ("bench.bigsheet", [], "--out"),
    ("bench.history", [], "--out"),
    ("bench.formulas", [], "--out"),
)


def fanout_rows(result: dict) -> list[dict]:
    rows = []
    for entry in result["scenarios"]:
        s, tabula, floor = entry["scenario"], entry["tabula"], entry.get("floor") or {}
        load = f"{s['clients']} clients, {s['writers']} writing {s['rate']:g} ops/s each, {s['seconds']:g} s"
        target = f"{load}: 100% delivered, durable, converged; p99 < {s['p99_ms']} ms"
        if s.get("floor_ratio"):
            target += f" and <= {s['floor_ratio']}x the floor's"
        p99, floor_p99 = tabula["latency_ms"]["p99"], floor.get("latency_ms", {}).get("p99")
        measured = f"p99 {p99:.1f} ms"
        if floor_p99:
            measured += f" (floor {floor_p99:.1f} ms, {p99 / floor_p99:.1f}x)"
        durable = "yes" if tabula["durable"] else "NO"
        measured += f"; delivered {tabula['delivered_pct']}%, durable {durable}, converged {tabula['converged']}/{tabula['converged_of']}"
        rows.append({"benchmark": f"fan-out {s['name']}", "target": target, "measured": measured, "met": entry["verdict"]["meets_targets"]})
    return rows


def sockets_rows(result: dict) -> list[dict]:
    want, got = result["targets"], result["summary"]
    target = f"{want['sockets']} idle sockets on a daphne, a broadcast to all in {want['broadcast_last_s']:g} s, < {want['kib_per_socket']} KiB each"
    measured = f"{got['sockets_held']} sockets, the last one reached after {got['broadcast_last_s']} s, {got['kib_per_socket']} KiB each"
    return [{"benchmark": "many sockets", "target": target, "measured": measured, "met": got["meets_target"]}]


def bigsheet_rows(result: dict) -> list[dict]:
    rows = []
    for size, target in result["targets"]["by_rows"].items():
        entry = result["sizes"].get(size, {})
        api = entry.get("snapshot_api", {}).get("nginx_median_s")
        page = entry.get("page", {}).get("median_s")
        label = f"{int(size):,} x 10"
        met = api is not None and api < target["snapshot_api"]
        rows.append({"benchmark": f"snapshot API {label}", "target": f"< {target['snapshot_api']} s", "measured": f"{api} s", "met": met})
        rows.append(
            {
                "benchmark": f"page {label}",
                "target": f"grid visible and scrolled to the last row < {target['grid_visible_scrolled']} s",
                "measured": f"{page} s",
                "met": page is not None and page < target["grid_visible_scrolled"],
            }
        )
    paste = result.get("paste", {}).get("median_s")
    limit = result["targets"]["paste_s"]
    met = paste is not None and paste < limit
    rows.append({"benchmark": "paste", "target": f"10,000 cells visible in another tab < {limit} s", "measured": f"{paste} s (median)", "met": met})
    slowest = result.get("structural_changes", {}).get("slowest_s")
    limit = result["targets"]["structural_s"]
    met = slowest is not None and slowest < limit
    target = f"each row or column insert or delete on the largest workbook < {limit} s"
    rows.append({"benchmark": "structural changes", "target": target, "measured": f"{slowest} s (slowest)", "met": met})
    return rows


def history_rows(result: dict) -> list[dict]:
    rev, cell, targets = result["rev"], result["cell_history"], result["targets"]
    return [
        {
            "benchmark": "workbook at a past revision",
            "target": f"GET ?rev=R on 100,000 x 10, {result['changes']['changes']:,} changes back < {targets['rev_s']} s",
            "measured": f"{rev['median_s']} s (median)",
            "met": rev["median_s"] < targets["rev_s"],
        },
        {
            "benchmark": "history of one cell",
            "target": f"{cell['versions']:,} versions among {result['log']['changes']:,} logged changes < {targets['cell_history_s']} s",
            "measured": f"{cell['median_s']} s (median)",
            "met": cell["median_s"] < targets["cell_history_s"],
        },
    ]


def formulas_rows(result: dict) -> list[dict]:
    return result["verdicts"]  # bench.formulas judges its targets itself (some compare two of its measurements)


ROWS = {
    "bench.fanout": fanout_rows,
    "bench.sockets": sockets_rows,
    "bench.bigsheet": bigsheet_rows,
    "bench.history": history_rows,
    "bench.formulas": formulas_rows,
}


def main() -> int:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    report: dict = {"benchmark": "all", "started": datetime.now(UTC).isoformat(timespec="seconds"), "results": {}, "rows": []}
    for module, args, out_option in BENCHMARKS:
        out = RESULTS / f"{module.split('.')[1]}-{stamp}-all.json"
        print(f"\n=== {module} {' '.join(args)}", flush=True)
        status = subprocess.run([sys.executable, "-m", module, *args, out_option, str(out)], cwd=ROOT).returncode
        report["results"][module] = str(out)
        try:
            report["rows"] += ROWS[module](json.loads(out.read_text()))
        except (OSError, ValueError, KeyError) as exc:
            missing = f"no result (exit {status}: {type(exc).__name__}: {exc})"
            report["rows"].append({"benchmark": module, "target": "-", "measured": missing, "met": False})
    report["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    report["all_met"] = all(row["met"] for row in report["rows"])
    path = RESULTS / f"all-{stamp}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print("\n=== every target, one report")
    for row in report["rows"]:
        print(f"{'MET   ' if row['met'] else 'MISSED'} {row['benchmark']:<26} {row['measured']}\n       {'':<26} target: {row['target']}")
    print(f"\n{'every target met' if report['all_met'] else 'some targets missed'}; results: {path}")
    return 0 if report["all_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
