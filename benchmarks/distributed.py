"""Deep feature synthesis on DuckDB (the anchor) and on Spark in local mode: seconds and peak memory.

    nice -n 10 python benchmarks/distributed.py [--rows 1000000 10000000] [--depth 2] [--timeout 420]
                                                [--spark-memory 4g] [--no-save]

Data: the synthetic generator (``skrel.datasets.make_synthetic``, 1,000 entities) with ``--rows``
rows in its largest table, its task's training rows. Features: ``DFSTransformer(max_depth=--depth)``,
every primitive, no windows (as ``benchmarks/dfs_engines.py``).

Each engine runs in its own subprocess, which builds the data, fits the transformer, imports its
engine (and for Spark starts a ``local[*]`` session with ``--spark-memory`` of driver memory, and runs
one warm-up query) and then measures the wall time of ``transform`` and the peak resident memory of
the process *and its children* (Spark's JVM is a child process), polled every 10 ms. The parent
checks that both engines give the same names and values (missing equals missing, floats within 1e-9
relative) and prints the ratios against DuckDB. A run past ``--timeout`` seconds is reported as such.
Results merge into ``benchmarks/results/distributed.json`` and ``distributed.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine import cpu_model, machines_line, stamp_rows  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
ENGINES = ("duckdb", "spark")


def machine() -> str:
    import duckdb
    import psutil

    try:
        import pyspark

        spark = pyspark.__version__
    except ImportError:  # pragma: no cover
        spark = "missing"
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()
    return (f"{cpu_model()}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM, "
            f"Python {platform.python_version()}, duckdb {duckdb.__version__}, pyspark {spark}, "
            f"{java[0] if java else 'no java'}")


# ------------------------------------------------------------------------------------------ worker
def _tree_rss(proc) -> int:
    import psutil

    total = 0
    for p in [proc] + proc.children(recursive=True):
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def worker(args) -> None:
    import numpy as np
    import psutil

    from skrel.datasets import make_synthetic
    from skrel.features import DFSTransformer

    t0 = time.perf_counter()
    db, tasks = make_synthetic(n_entities=1000, n_rows=args.size, random_state=0)
    X = tasks["synthetic"].split(db, "train")[0]
    build = time.perf_counter() - t0
    session = None
    if args.worker == "spark":
        from pyspark.sql import SparkSession

        session = (SparkSession.builder.master("local[*]").appName("skrel-benchmark")
                   .config("spark.driver.memory", args.spark_memory)
                   .config("spark.sql.shuffle.partitions", str(2 * (os.cpu_count() or 1)))
                   .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
                   .getOrCreate())
        session.sparkContext.setLogLevel("ERROR")
        session.sql("SELECT count(*) FROM range(1000)").collect()  # the JVM is up and warm
    else:
        import duckdb  # noqa: F401
    t = DFSTransformer(max_depth=args.depth, engine=args.worker, spark=session).fit(X)

    proc = psutil.Process()
    base = _tree_rss(proc)
    peak = [base]
    done = threading.Event()

    def poll():
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss(proc))
            time.sleep(0.01)

    th = threading.Thread(target=poll, daemon=True)
    th.start()
    t0 = time.perf_counter()
    F = t.transform(X)
    seconds = time.perf_counter() - t0
    done.set()
    th.join()
    F.to_pickle(args.out)
    result = dict(seconds=seconds, peak_mb=peak[0] / 2**20, base_mb=base / 2**20, rows=len(X), features=F.shape[1],
                  leaf_rows=args.size, build_seconds=build)
    print("RESULT " + json.dumps(result), flush=True)
    if session is not None:
        session.stop()


# ------------------------------------------------------------------------------------------ parent
def run_engine(engine: str, size: int, args, out: Path) -> dict:
    cmd = [sys.executable, __file__, "--worker", engine, "--size", str(size), "--depth", str(args.depth),
           "--spark-memory", args.spark_memory, "--out", str(out)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.timeout} s (data build included)"}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    text = (proc.stderr or "") + (proc.stdout or "")
    # the first exception, not the tail of a Java stack trace
    causes = [ln.strip() for ln in text.splitlines()
              if re.search(r"(Exception|Error)\b", ln) and not ln.lstrip().startswith("at ")]
    return {"error": (" | ".join(causes[:3]) or text[-500:])[:600]}


def compare(a_path: Path, b_path: Path) -> str:
    import numpy as np
    import pandas as pd

    a, b = pd.read_pickle(a_path), pd.read_pickle(b_path)
    if list(a.columns) != list(b.columns) or len(a) != len(b):
        return "DIFFERENT names or rows"
    bad = 0
    for col in a.columns:
        x, y = a[col].to_numpy(), b[col].to_numpy()
        if x.dtype == object or y.dtype == object:
            bad += sum(not ((u is None and v is None) or u == v) for u, v in zip(x, y))
        else:
            x, y = x.astype(float), y.astype(float)
            bad += int((~((np.isnan(x) & np.isnan(y)) | np.isclose(x, y, rtol=1e-9, atol=0.0))).sum())
    return "identical (floats within 1e-9)" if bad == 0 else f"{bad} of {a.size} values differ"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", nargs="+", type=int, default=[1_000_000, 10_000_000])
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=420, help="seconds per engine and size")
    parser.add_argument("--spark-memory", default="4g")
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return 0

    desc = machine()
    print(f"machine: {desc}", file=sys.stderr)
    header = (f"{'leaf rows':>10s} {'rows':>6s} {'feats':>5s} {'duckdb s':>9s} {'spark s':>9s} {'spark/duckdb':>12s} "
              f"{'duckdb MB':>9s} {'spark MB':>9s} {'ratio':>6s}  values")
    print(header, flush=True)
    lines, rows = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.rows:
            res = {e: run_engine(e, size, args, Path(tmp) / f"{size}-{e}.pkl") for e in ENGINES}
            d, s = res["duckdb"], res["spark"]
            row = {"leaf_rows": size, "depth": args.depth, "duckdb": d, "spark": s, "machine": desc,
                   "date": time.strftime("%Y-%m-%d %H:%M")}
            if "error" in d or "error" in s:
                row["values"] = "n/a"
                text = (f"{size:>10d} ERROR duckdb: {d.get('error', 'ok')[:300]} | "
                        f"spark: {s.get('error', 'ok')[:300]}")
            else:
                row["values"] = compare(Path(tmp) / f"{size}-duckdb.pkl", Path(tmp) / f"{size}-spark.pkl")
                row["time_ratio"] = s["seconds"] / d["seconds"]
                row["peak_ratio"] = s["peak_mb"] / d["peak_mb"]
                text = (f"{size:>10d} {d['rows']:>6d} {d['features']:>5d} {d['seconds']:>9.1f} {s['seconds']:>9.1f} "
                        f"{row['time_ratio']:>11.1f}x {d['peak_mb']:>9.0f} {s['peak_mb']:>9.0f} "
                        f"{row['peak_ratio']:>6.2f}  {row['values']}")
            print(text, flush=True)
            lines.append(text)
            rows[f"synthetic-{size}-depth{args.depth}"] = row
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / "distributed.json"
        store = json.loads(path.read_text()) if path.exists() else {"runs": {}}
        store["runs"].update(rows)
        stamp_rows(store, desc)
        path.write_text(json.dumps(store, indent=1) + "\n")
        md = [
            "# DFS on DuckDB (anchor) and Spark local mode",
            "",
            f"{machines_line(store)}. Synthetic database (1,000 entities), its task's training rows; "
            "`DFSTransformer`, every primitive, no windows. Seconds: `transform` only (data built, transformer "
            "fitted, engine imported and, for Spark, a `local[*]` session started and warmed before timing). "
            "MB: peak resident memory of the process and its children (Spark's JVM) during `transform`. "
            "Ratios: Spark / DuckDB. Values: the two engines' features compared (missing equals missing, "
            "floats within 1e-9 relative). CPU shared with other jobs: timings are noisy. "
            "Command: `nice -n 10 python benchmarks/distributed.py`.",
            "",
            "```",
            header,
        ]
        for key, r in sorted(store["runs"].items(), key=lambda kv: (kv[1]["depth"], kv[1]["leaf_rows"])):
            d, s = r["duckdb"], r["spark"]
            if "error" in d or "error" in s:
                md.append(f"{r['leaf_rows']:>10d} ERROR duckdb: {d.get('error', 'ok')[:200]} | "
                          f"spark: {s.get('error', 'ok')[:200]}")
            else:
                md.append(f"{r['leaf_rows']:>10d} {d['rows']:>6d} {d['features']:>5d} {d['seconds']:>9.1f} "
                          f"{s['seconds']:>9.1f} {r['time_ratio']:>11.1f}x {d['peak_mb']:>9.0f} {s['peak_mb']:>9.0f} "
                          f"{r['peak_ratio']:>6.2f}  {r['values']}")
        md.append("```")
        (RESULTS / "distributed.md").write_text("\n".join(md) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
