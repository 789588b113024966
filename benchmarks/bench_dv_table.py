"""DV table: our cold path vs the tutorial's way, and warm request latency over real HTTP.

Cold: parse ExoMAST's ~20k-row table JSON, normalise it and write the JSON answer.
  - tutorial's way: json.loads + an astropy Table built column by column from the list of row dicts + json.dumps
  - ours: orjson + column arrays (service.upstream.exomast.parse_dv_table) + orjson numpy output (to_json)
Warm: the service under uvicorn (a subprocess), backed by the emulator; sequential GETs of cached answers.

Run: make bench   (or .venv/bin/python benchmarks/bench_dv_table.py)
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from astropy.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._harness import p, service_process, warm_latencies_ms  # noqa: E402
from service.rendering.lightcurve_tables import to_json  # noqa: E402
from service.services.dv import lightcurve_table  # noqa: E402
from service.upstream.exomast import parse_dv_table  # noqa: E402
from service.upstream.http import UpstreamBody, parse_json  # noqa: E402
from tests.fake_mast import FakeMast  # noqa: E402

TIC, TCE = 214568914, "s0001-s0001:TCE_1"
REPEATS = 7
WARM_REQUESTS = 300


def tutorial_way(body: bytes) -> bytes:
    """What the ExoMAST tutorials do: rows of dicts into an astropy Table, one column at a time."""
    payload = json.loads(body)
    types = {"int": int, "real": float}
    table = Table()
    for field in payload["fields"]:
        name = field["colname"].strip()
        datatype = field["datatype"]
        dtype = types.get(datatype, f"U{datatype[8:-1]}" if datatype.startswith("varchar") else object)
        values = [row[field["colname"]] for row in payload["data"]]
        table[name] = np.array([np.nan if v is None else v for v in values], dtype=dtype)
    columns = {name: table[name].tolist() for name in table.colnames}
    return json.dumps({"n_rows": len(table), "columns": columns}).encode()


def our_way(body: bytes) -> bytes:
    table = parse_dv_table(parse_json(UpstreamBody(200, "application/json", body), "ExoMAST"))
    return to_json(lightcurve_table(table), {"tic_id": TIC})[0]


def median_seconds(fn, body: bytes) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn(body)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    with FakeMast(host="127.0.0.1", port=0) as mast:
        mast.start()
        body = httpx.get(
            f"{mast.exomast_url}dvdata/tess/{TIC}/table/", params={"tce": "TCE_1", "sector": "s0001-s0001"}
        ).content
        n_rows = len(json.loads(body)["data"])
        print(f"DV table: TIC {TIC} {TCE}, {n_rows:,} rows, {len(body) / 1e6:.1f} MB of JSON\n")

        tutorial = median_seconds(tutorial_way, body)
        ours = median_seconds(our_way, body)
        print(f"Cold: parse + normalise + write the JSON answer (median of {REPEATS})")
        print(f"  tutorial's way (json + astropy Table by column + json.dumps): {tutorial * 1000:8.1f} ms")
        print(f"  ours (orjson + column arrays + orjson numpy)                : {ours * 1000:8.1f} ms")
        print(f"  ratio: ours is {tutorial / ours:.1f}x faster (target >= 1.5x)\n")

        paths = [
            f"/tic/{TIC}/tces/{TCE}/lightcurve",
            f"/tic/{TIC}/tces/{TCE}/lightcurve?columns=TIME,LC_DETREND&start=1334&end=1335",
            f"/tic/{TIC}/tces",
        ]
        print(f"Warm: {WARM_REQUESTS} sequential GETs each over loopback HTTP, one uvicorn worker")
        with service_process(mast) as service, httpx.Client(base_url=service.base_url, timeout=60) as client:
            for path in paths:
                samples = warm_latencies_ms(client, path, WARM_REQUESTS)
                print(f"  {path:<80} p50 {p(samples, 50):6.2f} ms  p99 {p(samples, 99):6.2f} ms")
        print("  (target: warm p50 <= 5 ms)")


if __name__ == "__main__":
    main()
