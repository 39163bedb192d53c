"""Formulas at scale: recomputed values fanned out, edits that many formulas depend on, the snapshot
and the page of a workbook full of formulas, the first edit after a restart, and a full
recalculation beside LibreOffice's.

    python -m bench.formulas [--rows 100000] [--chain 10000] [--clients 100] [--seconds 30]

It starts the local production stack (stack/local.py: PostgreSQL, a private Redis, gunicorn and two
daphne processes under supervisord, nginx over TLS) and builds four workbooks through the API
(POST /api/workbooks/, then `set` operations of at most 10,000 cells posted to
/api/workbooks/{id}/ops through nginx, one column at a time):

- formulas: --rows rows, the numbers 1 to N in column A, `=A{n}*2` in B as formula cells on every
  row, and `=SUM(B:B)` in C1;
- literals: the same rows with literals only: A the same numbers, B their doubles, C1 their sum;
- shared input: the numbers in A, 2 in D1 and `=A{n}*$D$1` in B on every row, so that all the
  formulas depend on D1;
- chain: --chain rows, 0 in A1, `=A1+1` in B1 and `=B{n-1}+1` below, each formula depending on the
  one above.

Then, one after the other:

- snapshot and page (formulas workbook): GET /api/workbooks/{id}/ through nginx, the whole body
  read, median of --runs (bench.bigsheet.time_snapshot_api, also straight to gunicorn), and the
  snapshot path's steps in a Django process (bench.bigsheet.snapshot_breakdown, one run); the page
  in headless Chromium until the grid is visible and scrolled to the last row, showing its
  computed value in B, median of --page-runs (bench.bigsheet.measure_page);
- first edit after a restart: both daphne processes restarted (supervisorctl), a socket opened
  through nginx, and one `set` of a number in column A timed from its send until its change comes
  back: the process loads the workbook's formula engine state from the database first. A second
  edit right after shows an edit's time once it is loaded;
- an edit that every formula depends on (shared input, D1) and one at the head of the chain (A1):
  a writer's socket and --receivers other sockets on the workbook; each new value is sent by the
  writer, and the time runs from the send until a receiver has the change, which is checked to
  carry every new value in `computed` (the count and each value). The first edit loads the
  workbook's formula engine state into the daphne process and is reported apart; then --repeats
  edits, median of the last receiver's time;
- full recalculation (formulas workbook, as it is by then): in a Django process on the stack's
  database, `workbooks.services.engines.load` and then `Book.recalculate_all` (--recalc-runs
  times), timed apart; the same workbook, written from its snapshot as .xlsx with its formulas but
  no cached values, loaded into headless LibreOffice (Debian's libreoffice-calc-nogui, driven
  through Python-UNO by /usr/bin/python3; by default it does not recalculate an .xlsx on load) and
  hard-recalculated with `calculateAll()` (--recalc-runs times), the load and each recalculation
  timed apart. The ratio is Tabula's median over LibreOffice's, and LibreOffice's sum in C1 must
  equal Tabula's;
- fan-out, last (a server that cannot keep up is still working through its backlog when it ends),
  with bench.fanout's clients and checks: --clients sockets on the literals workbook, one of them
  writing a number into a random cell of column A --rate times a second for --seconds, then the
  same on the formulas workbook, where every edit changes that row's B and the sum (the change's
  `computed`); latency from send to arrival at every other client, p50 and p99, in the same run,
  waiting up to DRAIN_CAP_S for every delivery. Before each, one edit through a socket, so the
  daphne process serving the workbook has its formula engine state loaded, as for a workbook in
  use. The clients apply each change's computed values to their grids, which must equal the
  snapshot at the end.

Results: a table on stdout (target, measured, met or not) and JSON in
bench/results/formulas-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from contextlib import suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from playwright.sync_api import sync_playwright
from websockets.asyncio.client import connect

from bench import bigsheet, fanout
from stack.local import LocalStack, ensure_packages
from tests.browser.helpers import CHROMIUM, CHROMIUM_ARGS

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PASSWORD = "bench-formulas-password"
READER = "bench-formulas-reader"
CELLS_PER_SET = 10_000  # the limit of one `set`
A, B, C, D = range(4)  # column indices
TARGETS = {  # issue 16, "on this 2-core machine"
    "fanout_ratio": 2.0,  # p99 on the formulas workbook over p99 on the literals one, same run
    "shared_input_s": 1.0,
    "chain_s": 0.2,
    "snapshot_api_s": 1.0,
    "page_s": 2.5,
    "first_edit_after_restart_s": 3.0,
    "recalculation_ratio": 1.0,  # Tabula's full recalculation over LibreOffice's (aim: no slower)
}
DEBIAN_PYTHON = "/usr/bin/python3"
LIBREOFFICE_PACKAGES = ("soffice:libreoffice-calc-nogui", "/usr/lib/python3/dist-packages/uno.py:python3-uno")
PING_EVERY_S = 10  # a socket silent for 30 s is closed by the server
DRAIN_CAP_S = 600  # the fan-out waits this long for every delivery: the p99 of a server that cannot keep up counts every edit


# ---------------------------------------------------------------- building the workbooks


@dataclass(frozen=True)
class Workbook:
    """A workbook the benchmark built: its id, and its first sheet's id, row ids and column ids in order."""

    id: int
    sheet: int
    rows: list[int]
    cols: list[int]

    def cell(self, row: int, col: int, **content) -> dict:
        """A `set`'s cell at (row index, column index) with ``value=`` or ``formula=``."""
        return {"row": self.rows[row], "col": self.cols[col], **content}


Layout = list[tuple[str, Callable[[Workbook], list[dict]]]]  # what to write, in order: (label, its cells)


def formulas_layout(rows: int) -> Layout:
    return [
        ("numbers in A", lambda book: [book.cell(r, A, value=r + 1) for r in range(rows)]),
        ("=A{n}*2 in B", lambda book: [book.cell(r, B, formula=f"=A{r + 1}*2") for r in range(rows)]),
        ("=SUM(B:B) in C1", lambda book: [book.cell(0, C, formula="=SUM(B:B)")]),
    ]


def literals_layout(rows: int) -> Layout:
    return [
        ("numbers in A", lambda book: [book.cell(r, A, value=r + 1) for r in range(rows)]),
        ("their doubles in B", lambda book: [book.cell(r, B, value=2 * (r + 1)) for r in range(rows)]),
        ("their sum in C1", lambda book: [book.cell(0, C, value=rows * (rows + 1))]),
    ]


def shared_input_layout(rows: int) -> Layout:
    return [
        ("numbers in A", lambda book: [book.cell(r, A, value=r + 1) for r in range(rows)]),
        ("2 in D1", lambda book: [book.cell(0, D, value=2)]),
        ("=A{n}*$D$1 in B", lambda book: [book.cell(r, B, formula=f"=A{r + 1}*$D$1") for r in range(rows)]),
    ]


def chain_layout(rows: int) -> Layout:
    return [
        ("0 in A1", lambda book: [book.cell(0, A, value=0)]),
        ("=A1+1 in B1, =B{n-1}+1 below", lambda book: [book.cell(r, B, formula=f"=B{r}+1" if r else "=A1+1") for r in range(rows)]),
    ]


def fetch_snapshot(session, workbook_id: int) -> dict:
    status, snapshot = session.request("GET", f"/api/workbooks/{workbook_id}/")
    if status != 200:
        raise RuntimeError(f"GET workbook {workbook_id}: {status} {snapshot}")
    return snapshot


def build(session, name: str, rows: int, cols: int, layout: Layout) -> tuple[Workbook, dict]:
    """Creates a rows x cols workbook through the API and writes the layout's cells; how long each part took."""
    status, created = session.request("POST", "/api/workbooks/", {"name": name, "rows": rows, "cols": cols})
    if status != 201:
        raise RuntimeError(f"creating {name}: {status} {created}")
    sheet = fetch_snapshot(session, created["id"])["sheets"][0]
    book = Workbook(created["id"], sheet["id"], [r["id"] for r in sheet["rows"]], [c["id"] for c in sheet["columns"]])
    fill = {}
    for part, (label, cells_of) in enumerate(layout):
        times = write_cells(session, book, cells_of(book), f"fill-{book.id}-{part}")
        fill[label] = {"sets": len(times), "seconds": round(sum(times), 2), "set_median_s": round(statistics.median(times), 3)}
        print(f"  {name}: {label}: {len(times)} set(s) in {sum(times):.1f} s", flush=True)
    return book, fill


def write_cells(session, book: Workbook, cells: list[dict], op_prefix: str) -> list[float]:
    """Posts the cells as `set` operations of at most 10,000 through nginx; each one's time until its answer."""
    times = []
    for first in range(0, len(cells), CELLS_PER_SET):
        operation = {"type": "set", "op": f"{op_prefix}-{first}", "sheet": book.sheet, "cells": cells[first : first + CELLS_PER_SET]}
        started = time.perf_counter()
        status, body = session.request("POST", f"/api/workbooks/{book.id}/ops", operation)
        times.append(time.perf_counter() - started)
        if status != 201:
            raise RuntimeError(f"{operation['op']}: {status} {str(body)[:500]}")
    return times


# ---------------------------------------------------------------- sockets


class Socket:
    """One socket on a workbook through nginx, reading everything it is sent. ``expect(op)`` makes it
    note when a message naming that op arrives; the message is kept as text and parsed later, so
    the time is its arrival's."""

    def __init__(self, ws):
        self.ws = ws
        self.expecting: str | None = None
        self.arrived_ns: int | None = None
        self.text: str | None = None
        self.got = asyncio.Event()
        self.tasks = [asyncio.create_task(self.read()), asyncio.create_task(self.ping())]

    @classmethod
    async def open(cls, stack, session, workbook_id: int) -> Socket:
        ws = await connect(
            f"{stack.ws_url}/ws/workbooks/{workbook_id}/",
            additional_headers={"Cookie": session.cookie_header()},
            origin=stack.url,
            ssl=stack.ssl_context(),
            compression=None,
            ping_interval=None,
            max_size=None,  # a change carrying 100,000 computed values is several MB
            open_timeout=60,
        )
        while json.loads(await ws.recv())["type"] != "hello":
            pass
        return cls(ws)

    async def read(self) -> None:
        async for text in self.ws:
            now = time.monotonic_ns()
            if self.expecting is not None and self.arrived_ns is None and self.expecting in text:
                self.arrived_ns, self.text = now, text
                self.got.set()

    async def ping(self) -> None:
        while True:
            await asyncio.sleep(PING_EVERY_S)
            await self.ws.send('{"type":"ping"}')

    def expect(self, op: str) -> None:
        self.expecting, self.arrived_ns, self.text = op, None, None
        self.got.clear()

    def message(self) -> dict:
        """The message that named the expected op (its change, or an error)."""
        message = json.loads(self.text)
        if message.get("op") != self.expecting:
            raise RuntimeError(f"a message named {self.expecting} without being its answer: {self.text[:300]}")
        return message

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await self.ws.close()


async def send_set(sender: Socket, others: list[Socket], book: Workbook, row: int, col: int, value, op: str, timeout: float = 120) -> int:
    """Sends a one-cell `set` from ``sender`` and waits until it and every other socket have its
    change; the send time (monotonic ns). Each socket's ``arrived_ns`` and ``message()`` tell the rest."""
    for socket in (sender, *others):
        socket.expect(op)
    sent = time.monotonic_ns()
    await sender.ws.send(json.dumps({"type": "set", "op": op, "sheet": book.sheet, "cells": [book.cell(row, col, value=value)]}))
    await asyncio.wait_for(sender.got.wait(), timeout)
    answer = sender.message()
    if answer["type"] != "change":
        raise RuntimeError(f"the edit was refused: {answer}")
    await asyncio.wait_for(asyncio.gather(*(socket.got.wait() for socket in others)), timeout)
    return sent


def products_of(book: Workbook) -> Callable[[float], dict]:
    """What each B{n} = A{n}*$D$1 computes with D1 = v (A{n} holds n), by row id."""
    return lambda v: {row: (n + 1) * v for n, row in enumerate(book.rows)}


def chain_of(book: Workbook) -> Callable[[float], dict]:
    """What each B{n} of the chain computes with A1 = v, by row id."""
    return lambda v: {row: v + n + 1 for n, row in enumerate(book.rows)}


def seconds_since(sent_ns: int, arrived_ns: int) -> float:
    return round((arrived_ns - sent_ns) / 1e9, 4)


# ---------------------------------------------------------------- first edit after a restart


def first_edit_after_restart(stack, session, book: Workbook) -> dict:
    """Restarts both daphne processes, then times a socket's first `set` until its change, and a second."""
    started = time.perf_counter()
    stack.supervisorctl("restart", *(f"tabula:tabula-daphne-{n}" for n in range(len(stack.daphne_ports))))
    stack.wait_running()
    restarted = time.perf_counter() - started
    found = asyncio.run(edits_after_restart(stack, session, book))
    return {"restart_s": round(restarted, 2), **found}


async def edits_after_restart(stack, session, book: Workbook) -> dict:
    started = time.monotonic_ns()
    socket = await Socket.open(stack, session, book.id)
    connected = time.monotonic_ns()
    try:
        middle = len(book.rows) // 2
        timed = {"socket_open_s": seconds_since(started, connected)}
        for name, value in (("first_edit", -1), ("second_edit", -2)):
            sent = await send_set(socket, [], book, middle, A, value, f"restart-{secrets.token_hex(4)}")
            timed[f"{name}_s"] = seconds_since(sent, socket.arrived_ns)
            timed[f"{name}_computed_values"] = len(socket.message()["computed"])
        return timed
    finally:
        await socket.close()


# ---------------------------------------------------------------- an edit many formulas depend on


def time_spread(stack, writer, reader, book: Workbook, edit: tuple[int, int], values: list, expected: Callable, receivers: int) -> dict:
    """The writer sets cell ``edit`` (row, column index) to each of ``values``; each time, how long
    until the other sockets have the change, and whether its ``computed`` is ``expected(value)``
    ({row id: value} of every formula) exactly."""
    return asyncio.run(spread(stack, writer, reader, book, edit, values, expected, receivers))


async def spread(stack, writer, reader, book: Workbook, edit: tuple[int, int], values: list, expected: Callable, receivers: int) -> dict:
    sender = await Socket.open(stack, writer, book.id)
    others = [await Socket.open(stack, reader, book.id) for _ in range(receivers)]
    runs = []
    try:
        for n, value in enumerate(values):
            sent = await send_set(sender, others, book, *edit, value, f"spread-{secrets.token_hex(4)}-{n}")
            arrivals = [seconds_since(sent, socket.arrived_ns) for socket in others]
            want = expected(value)
            computed = {item["row"]: item["value"] for item in others[-1].message()["computed"]}
            runs.append(
                {
                    "answered_s": seconds_since(sent, sender.arrived_ns),
                    "first_receiver_s": min(arrivals),
                    "last_receiver_s": max(arrivals),
                    "message_bytes": len(others[-1].text.encode()),
                    "computed": len(computed),
                    "expected": len(want),
                    "values_right": computed == want,
                }
            )
            print(f"    edit {n}: last receiver after {max(arrivals):.3f} s, {len(computed):,} computed values", flush=True)
            await asyncio.sleep(1)
    finally:
        for socket in (sender, *others):
            await socket.close()
    first, timed = runs[0], runs[1:]
    last = [run["last_receiver_s"] for run in timed]
    return {
        "receivers": receivers,
        "first_edit_loading_the_engine": first,
        "runs": timed,
        "last_receiver_median_s": round(statistics.median(last), 4) if last else None,
        "last_receiver_max_s": max(last) if last else None,
        "all_values_right": all(run["values_right"] for run in runs),
    }


# ---------------------------------------------------------------- fan-out


class GivenWorkbook(fanout.Tabula):
    """bench.fanout's Tabula target on a running stack and a workbook built here (shared with the
    reader), its writers writing to column A."""

    def __init__(self, stack, writer, reader, book: Workbook):
        super().__init__()
        self.stack, self.writer, self.reader, self.book = stack, writer, reader, book

    def prepare(self, scenario: fanout.Scenario) -> dict:
        return fetch_snapshot(self.writer, self.book.id)

    def writable_cells(self, snapshot: dict) -> list[tuple]:
        return [(row, self.book.cols[A]) for row in self.book.rows]


def fan_out(stack, writer, reader, books: dict[str, Workbook], args) -> dict:
    """bench.fanout's load, one writer on column A, on the literals workbook and then on the formulas one."""
    load = argparse.Namespace(drain_idle=30, drain_cap=DRAIN_CAP_S, py_spy=False)
    found = {}
    for name in ("literals", "formulas"):
        book = books[name]
        warm_up = asyncio.run(one_edit(stack, writer, book))
        scenario = fanout.Scenario(name, args.clients, 1, args.rate, args.seconds, numbers=True)
        print(f"fan-out on the {name} workbook: {scenario.describe()} ...", flush=True)
        target = GivenWorkbook(stack, writer, reader, book)
        entry = {"scenario": asdict(scenario), "warm_up_edit_s": warm_up, "tabula": fanout.run_load(scenario, target, load, procs=1)}
        entry["verdict"] = fanout.verdict(scenario, entry["tabula"], None)
        fanout.print_scenario(entry)
        found[name] = entry
    literal, formula = (found[name]["tabula"]["latency_ms"].get("p99") for name in ("literals", "formulas"))
    found["p99_ratio"] = round(formula / literal, 2) if literal and formula else None
    return found


async def one_edit(stack, session, book: Workbook) -> float:
    """One `set` through a socket until its change: the daphne process serving the workbook loads it."""
    socket = await Socket.open(stack, session, book.id)
    try:
        sent = await send_set(socket, [], book, 0, A, 1, f"warm-{secrets.token_hex(4)}")
        return seconds_since(sent, socket.arrived_ns)
    finally:
        await socket.close()


def share(owner, book: Workbook) -> None:
    status, body = owner.request("PUT", f"/api/workbooks/{book.id}/members/{READER}", {"role": "viewer"})
    if status not in (200, 201):
        raise RuntimeError(f"sharing workbook {book.id}: {status} {body}")


# ---------------------------------------------------------------- full recalculation


def time_recalculation(workbook_id: int, sum_cell: list[int], runs: int) -> dict:
    """Runs in a Django process with the stack's settings: ``engines.load`` of the workbook, then
    ``recalculate_all`` ``runs`` times; the sum ``sum_cell`` (row id, column id) computed."""
    import django

    django.setup()
    from workbooks.domain.formulas import stored
    from workbooks.domain.formulas.engine import same
    from workbooks.services import engines

    started = time.perf_counter()
    book = engines.load(workbook_id)
    loaded = time.perf_counter() - started
    as_stored = dict(book.computed)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        book.recalculate_all()
        times.append(time.perf_counter() - started)
    return {
        "formulas": len(book.cells),
        "load_s": round(loaded, 3),
        "recalculate_all_runs_s": [round(t, 3) for t in times],
        "recalculate_all_median_s": round(statistics.median(times), 3),
        "values_differing_from_stored": sum(1 for key, value in book.computed.items() if not same(as_stored.get(key), value)),
        "sum": stored.to_wire(book.computed[tuple(sum_cell)]),
    }


def tabula_recalculation(stack, book: Workbook, runs: int) -> dict:
    code = f"import json, bench.formulas as f; print(json.dumps(f.time_recalculation({book.id}, {[book.rows[0], book.cols[C]]}, {runs})))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=stack.app_env(), capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


XLSX_PARTS = {
    "[Content_Types].xml": (
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        "</Types>"
    ),
    "_rels/.rels": (
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
        "</Relationships>"
    ),
    "xl/_rels/workbook.xml.rels": (
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Target="worksheets/sheet1.xml"'
        ' Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet"/>'
        "</Relationships>"
    ),
}
XML_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
SPREADSHEET_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def write_xlsx(snapshot: dict, path: Path) -> int:
    """The snapshot's first sheet as an .xlsx file: literals as values, formula cells as their
    formulas without a cached value (so LibreOffice has only its own results); the formula count."""
    sheet = snapshot["sheets"][0]
    columns = sheet["columns"]
    formulas = {(f["row"], f["col"]): f["formula"] for f in sheet["formulas"]}
    rows = []
    for number, row in enumerate(sheet["rows"], start=1):
        cells = []
        for i, column in enumerate(columns):
            ref = f"{column['title']}{number}"
            formula = formulas.get((row["id"], column["id"]))
            value = row["values"][i] if i < len(row["values"]) else None
            if formula is not None:
                cells.append(f'<c r="{ref}"><f>{escape(formula.removeprefix("="))}</f></c>')
            elif isinstance(value, bool):
                cells.append(f'<c r="{ref}" t="b"><v>{int(value)}</v></c>')
            elif isinstance(value, int | float):
                cells.append(f'<c r="{ref}"><v>{value!r}</v></c>')
            elif isinstance(value, str):
                cells.append(f'<c r="{ref}" t="inlineStr"><is><t>{escape(value)}</t></is></c>')
        if cells:
            rows.append(f'<row r="{number}">{"".join(cells)}</row>')
    workbook = (
        f'<workbook xmlns="{SPREADSHEET_NS}" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        f'<sheets><sheet name={quoteattr(sheet["name"])} sheetId="1" r:id="rId1"/></sheets></workbook>'
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as package:
        for name, text in XLSX_PARTS.items():
            package.writestr(name, XML_HEAD + text)
        package.writestr("xl/workbook.xml", XML_HEAD + workbook)
        worksheet = f'<worksheet xmlns="{SPREADSHEET_NS}"><sheetData>{"".join(rows)}</sheetData></worksheet>'
        package.writestr("xl/worksheets/sheet1.xml", XML_HEAD + worksheet)
    return len(formulas)


# Run by Debian's Python (python3-uno): starts a headless LibreOffice with a throwaway profile, loads
# the file (argv[1]) and recalculates it hard argv[2] times, each timed; prints JSON.
LIBREOFFICE_SCRIPT = """
import json, os, shutil, signal, statistics, subprocess, sys, tempfile, time
import uno
from com.sun.star.beans import PropertyValue

path, runs = sys.argv[1], int(sys.argv[2])
profile = tempfile.mkdtemp(prefix="tabula-libreoffice-")
pipe = f"tabula_bench_{os.getpid()}"
office = subprocess.Popen(
    ["soffice", "--headless", "--invisible", "--nologo", "--norestore", "--nodefault",
     f"-env:UserInstallation={uno.systemPathToFileUrl(profile)}", f"--accept=pipe,name={pipe};urp;"],
    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
)
try:
    local = uno.getComponentContext()
    resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
    deadline = time.monotonic() + 120
    while True:
        try:
            context = resolver.resolve(f"uno:pipe,name={pipe};urp;StarOffice.ComponentContext")
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)
    desktop = context.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", context)
    hidden = PropertyValue()
    hidden.Name, hidden.Value = "Hidden", True
    started = time.perf_counter()
    doc = desktop.loadComponentFromURL(uno.systemPathToFileUrl(path), "_blank", 0, (hidden,))
    loaded = time.perf_counter() - started
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        doc.calculateAll()
        times.append(time.perf_counter() - started)
    total = doc.Sheets.getByIndex(0).getCellByPosition(2, 0)
    found = {
        "version": subprocess.run(["soffice", "--version"], capture_output=True, text=True).stdout.strip(),
        "load_s": round(loaded, 3),
        "calculate_all_runs_s": [round(t, 3) for t in times],
        "calculate_all_median_s": round(statistics.median(times), 3),
        "sum": total.getValue(),
        "sum_error": total.getError(),
    }
    doc.close(True)
    try:
        desktop.terminate()
    except Exception:
        pass  # the office goes away while answering
finally:
    try:
        office.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(office.pid, signal.SIGKILL)
        office.wait()
    shutil.rmtree(profile, ignore_errors=True)
print(json.dumps(found))
"""


def libreoffice_recalculation(snapshot: dict, runs: int) -> dict:
    scratch = Path(tempfile.mkdtemp(prefix="tabula-xlsx-"))
    try:
        path = scratch / "formulas.xlsx"
        formulas = write_xlsx(snapshot, path)
        result = subprocess.run([DEBIAN_PYTHON, "-c", LIBREOFFICE_SCRIPT, str(path), str(runs)], capture_output=True, text=True, timeout=1800)
        if result.returncode != 0:
            raise RuntimeError(result.stderr[-3000:])
        return {"file": "xlsx", "file_bytes": path.stat().st_size, "formulas": formulas, **json.loads(result.stdout.strip().splitlines()[-1])}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# ---------------------------------------------------------------- the run


def run(args) -> dict:
    ensure_packages(f"{CHROMIUM}:chromium", *LIBREOFFICE_PACKAGES)
    rows, chain = args.rows, args.chain
    result: dict = {
        "benchmark": "formulas",
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.formulas " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release()},
        "loadavg_at_start": os.getloadavg(),
        "rows": rows,
        "chain_length": chain,
        "receivers": args.receivers,
        "fanout_load": f"{args.clients} clients, 1 writing numbers into column A at {args.rate:g}/s for {args.seconds:g} s",
        "workbooks": {},
    }
    with LocalStack() as stack:
        print(f"local stack in {stack.dir}", flush=True)
        writer = stack.session("bench-formulas", PASSWORD)
        reader = stack.session(READER, PASSWORD)
        books = {}
        for name, size, cols, layout in (
            ("formulas", rows, 3, formulas_layout(rows)),
            ("literals", rows, 3, literals_layout(rows)),
            ("shared input", rows, 4, shared_input_layout(rows)),
            ("chain", chain, 2, chain_layout(chain)),
        ):
            print(f"building {name}: {size:,} rows ...", flush=True)
            books[name], fill = build(writer, name, size, cols, layout)
            share(writer, books[name])
            result["workbooks"][name] = {"id": books[name].id, "rows": size, "fill": fill}
        formulas, shared, chained = books["formulas"], books["shared input"], books["chain"]

        print("snapshot API and page of the formulas workbook ...", flush=True)
        result["snapshot_api"] = bigsheet.guarded("snapshot API", bigsheet.time_snapshot_api, stack, writer, formulas.id, args.runs)
        result["snapshot_breakdown"] = bigsheet.snapshot_breakdown(stack, formulas.id, 1)
        result.update(bigsheet.guarded("page", measure_page, stack, writer, formulas, args))
        print("first edit after restarting the daphne processes ...", flush=True)
        result["first_edit_after_restart"] = bigsheet.guarded("first edit after a restart", first_edit_after_restart, stack, writer, formulas)

        print(f"an edit that {rows:,} formulas depend on (D1) ...", flush=True)
        values = [3 + n for n in range(args.repeats + 1)]  # D1 holds 2
        every = products_of(shared)
        result["shared_input"] = bigsheet.guarded("shared input", time_spread, stack, writer, reader, shared, (0, D), values, every, args.receivers)
        print(f"an edit at the head of a chain of {chain:,} (A1) ...", flush=True)
        values = [1 + n for n in range(args.repeats + 1)]  # A1 holds 0
        every = chain_of(chained)
        result["chain"] = bigsheet.guarded("chain", time_spread, stack, writer, reader, chained, (0, A), values, every, args.receivers)

        print("full recalculation of the formulas workbook: Tabula, then LibreOffice ...", flush=True)
        snapshot = fetch_snapshot(writer, formulas.id)
        result["recalculation"] = {
            "snapshot_sum": snapshot["sheets"][0]["rows"][0]["values"][C],
            "tabula": bigsheet.guarded("Tabula's recalculation", tabula_recalculation, stack, formulas, args.recalc_runs),
            "libreoffice": bigsheet.guarded("LibreOffice's recalculation", libreoffice_recalculation, snapshot, args.recalc_runs),
        }
        # Last: a server that cannot keep up is still working through the backlog when the fan-out ends.
        result["fanout"] = bigsheet.guarded("fan-out", fan_out, stack, writer, reader, books, args)
    return result


def measure_page(stack, session, book: Workbook, args) -> dict:
    """bench.bigsheet's page measurement: until the grid shows the last row's computed B."""
    with sync_playwright() as playwright:
        pin = f"--ignore-certificate-errors-spki-list={bigsheet.certificate_pin(Path(stack.cert))}"
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, pin])
        try:
            script = bigsheet.measure_js(len(book.rows) - 1, str(2 * len(book.rows)))
            page_args = argparse.Namespace(page_runs=args.page_runs, cpu_profile=False)
            context = bigsheet.new_context(browser, stack, session)
            return bigsheet.measure_page(context, script, f"{stack.url}/workbooks/{book.id}/", ("page", "page_profile"), page_args)
        finally:
            browser.close()


def verdicts(result: dict) -> list[dict]:
    """Each target of the issue: what was measured, met or not (a step that failed: its error, missed)."""
    rows, chain, targets = result["rows"], result["chain_length"], result["targets"]
    found = []

    def add(benchmark: str, target: str, measured, met) -> None:
        found.append({"benchmark": f"formulas: {benchmark}", "target": target, "measured": measured, "met": bool(met)})

    def failed(entry: dict) -> str:
        return "no result" + (f": {entry['error']}" if "error" in entry else "")

    fanout_found = result.get("fanout", {})
    target = (
        f"{result['fanout_load']}, on {rows:,} rows: p99 <= {targets['fanout_ratio']:g}x on the same rows without formulas; "
        "delivered, durable, converged"
    )
    if "p99_ratio" in fanout_found:
        literal, formula, ratio = fanout_found["literals"]["tabula"], fanout_found["formulas"]["tabula"], fanout_found["p99_ratio"]
        checked = all(fanout_found[name]["verdict"]["meets_targets"] for name in ("literals", "formulas"))
        measured = (
            f"p99 {formula['latency_ms']['p99']:.1f} ms against {literal['latency_ms']['p99']:.1f} ms ({ratio}x); "
            f"delivered {formula['delivered_pct']}%, durable {'yes' if formula['durable'] else 'NO'}, "
            f"converged {formula['converged']}/{formula['converged_of']}"
        )
        add("fan-out", target, measured, checked and ratio is not None and ratio <= targets["fanout_ratio"])
    else:
        add("fan-out", target, failed(fanout_found), False)

    for key, label, limit in (("shared_input", f"an input of {rows:,} formulas", "shared_input_s"), ("chain", f"a chain of {chain:,}", "chain_s")):
        entry = result.get(key, {})
        target = f"the change with every new value at {result['receivers']} other clients < {targets[limit]:g} s"
        median = entry.get("last_receiver_median_s")
        if median is None:
            add(label, target, failed(entry), False)
            continue
        runs, slowest, right = len(entry["runs"]), entry["last_receiver_max_s"], entry["all_values_right"]
        measured = f"{median} s (median of {runs}, last receiver; max {slowest} s); values right: {right}"
        add(label, target, measured, median < targets[limit] and right)

    api = result.get("snapshot_api", {}).get("nginx_median_s")
    met = api is not None and api < targets["snapshot_api_s"]
    add(f"snapshot API, {rows:,} rows", f"< {targets['snapshot_api_s']:g} s", f"{api} s (median)", met)
    page = result.get("page", {}).get("median_s")
    target = f"visible, scrolled to the last row < {targets['page_s']:g} s"
    add(f"page, {rows:,} rows", target, f"{page} s (median)", page is not None and page < targets["page_s"])
    restart = result.get("first_edit_after_restart", {})
    target = f"answered < {targets['first_edit_after_restart_s']:g} s"
    if "first_edit_s" in restart:
        measured = f"{restart['first_edit_s']} s (the next edit {restart['second_edit_s']} s)"
        add("first edit after a restart", target, measured, restart["first_edit_s"] < targets["first_edit_after_restart_s"])
    else:
        add("first edit after a restart", target, failed(restart), False)

    recalculation = result.get("recalculation", {})
    tabula, office = recalculation.get("tabula", {}), recalculation.get("libreoffice", {})
    target = f"Tabula's time <= {targets['recalculation_ratio']:g}x LibreOffice's hard recalculation, the same sum"
    if "recalculate_all_median_s" in tabula and "calculate_all_median_s" in office:
        ratio = round(tabula["recalculate_all_median_s"] / office["calculate_all_median_s"], 2)
        sums_equal = tabula["sum"] == office["sum"] == recalculation["snapshot_sum"]
        measured = (
            f"Tabula {tabula['recalculate_all_median_s']} s, LibreOffice {office['calculate_all_median_s']} s: {ratio}x; "
            f"sums {'equal' if sums_equal else 'DIFFER'} ({tabula['sum']}, {office['sum']})"
        )
        add("full recalculation", target, measured, ratio <= targets["recalculation_ratio"] and sums_equal)
    else:
        add("full recalculation", target, failed(tabula if "error" in tabula else office), False)
    return found


def print_details(result: dict) -> None:
    for name, entry in result["workbooks"].items():
        parts = ", ".join(f"{label} {part['seconds']} s ({part['sets']} sets)" for label, part in entry["fill"].items())
        print(f"built {name} ({entry['rows']:,} rows): {parts}")
    restart = result.get("first_edit_after_restart", {})
    if "first_edit_s" in restart:
        print(
            f"restart of the daphne processes {restart['restart_s']} s; then a socket opened in {restart['socket_open_s']} s, "
            f"its first edit answered in {restart['first_edit_s']} s, the next in {restart['second_edit_s']} s"
        )
    for key in ("shared_input", "chain"):
        entry = result.get(key, {})
        if "runs" in entry:
            first = entry["first_edit_loading_the_engine"]
            print(
                f"{key}: first edit (the engine loaded) at the last receiver after {first['last_receiver_s']} s; then "
                f"{[run['last_receiver_s'] for run in entry['runs']]} s (the writer's answer {[run['answered_s'] for run in entry['runs']]} s); "
                f"{first['computed']:,} computed values, {first['message_bytes']:,} bytes"
            )
    tabula, office = result.get("recalculation", {}).get("tabula", {}), result.get("recalculation", {}).get("libreoffice", {})
    if "load_s" in tabula:
        print(f"Tabula: engines.load {tabula['load_s']} s, recalculate_all {tabula['recalculate_all_runs_s']} s, {tabula['formulas']:,} formulas")
    if "load_s" in office:
        print(f"LibreOffice ({office['version']}): load {office['load_s']} s, calculateAll {office['calculate_all_runs_s']} s")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the formulas, literals and shared-input workbooks (at most 100,000)")
    parser.add_argument("--chain", type=int, default=10_000, help="cells in the chain")
    parser.add_argument("--clients", type=int, default=100, help="sockets in the fan-out")
    parser.add_argument("--rate", type=float, default=50, help="the fan-out's edits a second")
    parser.add_argument("--seconds", type=float, default=30, help="the fan-out's sending time on each workbook")
    parser.add_argument("--receivers", type=int, default=10, help="other sockets timed for the shared input and the chain")
    parser.add_argument("--repeats", type=int, default=5, help="timed edits of the shared input and the chain (after the first)")
    parser.add_argument("--runs", type=int, default=5, help="snapshot API requests")
    parser.add_argument("--page-runs", type=int, default=3, help="page loads")
    parser.add_argument("--recalc-runs", type=int, default=3, help="full recalculations, in Tabula and in LibreOffice")
    parser.add_argument("--out", type=Path, help="the JSON result file (default bench/results/formulas-<time>.json)")
    args = parser.parse_args(argv)
    if not 1 <= args.rows <= 100_000 or args.chain < 2:
        parser.error("--rows must be 1 to 100,000 (a sheet's limit) and --chain at least 2")
    result = run(args)
    result["loadavg_at_end"] = os.getloadavg()
    result["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    result["targets"] = TARGETS
    result["verdicts"] = verdicts(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = args.out or RESULTS / f"formulas-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print()
    print_details(result)
    print("\n=== issue 16's targets")
    for row in result["verdicts"]:
        print(f"{'MET   ' if row['met'] else 'MISSED'} {row['benchmark']:<40} {row['measured']}\n       {'':<40} target: {row['target']}")
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    with suppress(KeyboardInterrupt):
        sys.exit(main())
