"""Deep feature synthesis on DuckDB (the anchor) and on Spark in local mode, both reading the same
database from Parquet files: seconds, peak memory, spill, throughput, and a paper estimate of a
cluster.

    nice -n 10 python benchmarks/distributed.py [--rows 1000000 10000000 100000000] [--depth 2]
        [--timeout 900] [--spark-memory 4g] [--memory-limit 2GB] [--chunk-rows 10000000]
        [--data DIR] [--engines duckdb spark] [--nodes 10] [--node-cores 16] [--shuffle-overhead 0.5]
        [--max-scratch-gb 40] [--min-free-gb 12] [--no-save | --render]

Data. The synthetic generator (``skrel.datasets.make_synthetic``, 1,000 entities, depth 2: ``events``
with half the rows, ``sub_events`` with ``--rows`` rows, the largest table) is written once per size
to ``<data>/<rows>/<table>.parquet`` with a ``schema.toml``, outside every timed part. Sizes above
``--chunk-rows`` are generated in pieces of ``--chunk-rows`` leaf rows (``make_synthetic`` with seeds
0, 1, 2, ..., primary keys offset past the previous pieces, foreign keys with them), appended to the
two timed tables' files with a pyarrow ``ParquetWriter``: memory stays that of one piece. The small
tables (entities, groups, event types) are piece 0's. The rows to compute features for are the
task's training rows over the written database (labels by DuckDB SQL on the files), saved beside it.
``--data DIR`` keeps the files (and reuses them on the next run); by default they go to a temporary
directory removed at the end.

Each engine runs in its own subprocess over ``Database.from_parquet(dir, memory_rows=0)`` (every
table stays in its file: DuckDB's ``read_parquet`` and Spark's ``read.parquet`` read them where they
lie; the worker checks that no table was loaded into the Python process). The worker fits
``DFSTransformer(max_depth=--depth)`` (every primitive, no windows), imports its engine (for Spark:
a ``local[*]`` session with ``--spark-memory`` of driver memory, ``spark.local.dir`` and an event log
in known temporary directories, one warm-up query), then times ``transform`` and records

- seconds (wall time of ``transform``);
- peak resident memory of the process *and its children* (Spark's JVM is one), polled every 10 ms;
- spill: DuckDB, the peak size of its ``temp_directory`` (set to a fresh directory; DuckDB spills
  there beyond ``--memory-limit``); Spark, the bytes its tasks spilled to disk and the shuffle bytes
  they wrote (summed from the event log's task metrics), and the peak size of ``spark.local.dir``
  (shuffle files and spills);
- throughput: leaf rows per second per core (``rows / seconds / cores``); for Spark also the summed
  executor run time of its tasks (core-seconds actually spent in tasks) and leaf rows per
  task-second, the per-partition throughput.

The parent checks that both engines give the same names and values (missing equals missing, floats
within 1e-9 relative) and prints ratios against DuckDB. A run past ``--timeout`` seconds, or whose
spill and shuffle files pass ``--max-scratch-gb`` (or leave less than ``--min-free-gb`` on the disk),
is stopped and reported as such. From the measured runs it derives the crossover (the smallest size where Spark local takes
at most DuckDB's time; if none, an extrapolation of the two measured scaling laws, labelled as an
estimate) and a paper estimate of a cluster of ``--nodes`` x ``--node-cores`` cores (Spark's task
time spread over every core, times ``1 + --shuffle-overhead`` for network shuffle, plus the fixed
per-run overhead measured locally). Results merge into ``benchmarks/results/distributed.json`` and
``distributed.md``.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import RESULTS, machine, machines_line, standard_flags, stamp_rows, watch_peaks
ENGINES = ("duckdb", "spark")
TIMED = ("events", "sub_events")  # the tables that grow with --rows (pieces append to them)


def java_version() -> str:
    """The first line of ``java -version`` (Spark runs on it), or ``no java``."""
    try:
        java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()
    except FileNotFoundError:
        java = []
    return java[0] if java else "no java"


# ------------------------------------------------------------------------------------------ data
def generate(size: int, root: Path, chunk_rows: int, log) -> dict:
    """Write the synthetic database with ``size`` leaf rows to ``root`` (in pieces of at most
    ``chunk_rows`` leaf rows) and its training rows to ``root/rows.npz``; reuse a complete one."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from skrel.data import Database, schema_toml
    from skrel.datasets import make_synthetic

    done = root / "done.json"
    if done.exists():
        return json.loads(done.read_text())
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    t0 = time.perf_counter()
    pieces = [chunk_rows] * (size // chunk_rows) + ([size % chunk_rows] if size % chunk_rows else [])
    writers: dict[str, pq.ParquetWriter] = {}
    offsets = {t: 0 for t in TIMED}
    task = None
    for seed, n in enumerate(pieces):
        db, tasks = make_synthetic(n_entities=1000, n_rows=n, random_state=seed)
        if seed == 0:
            task = tasks["synthetic"]
            for name, t in db.tables.items():
                if name not in TIMED:
                    t.df.to_parquet(root / f"{name}.parquet", index=False)
            (root / "schema.toml").write_text(schema_toml(db))
        events = db["events"].df.copy()
        sub = db["sub_events"].df.copy()
        events["event_id"] += offsets["events"]
        sub["event_id"] += offsets["events"]
        sub["sub_event_id"] += offsets["sub_events"]
        offsets["events"] += len(db["events"].df)
        offsets["sub_events"] += len(db["sub_events"].df)
        for name, df in (("events", events), ("sub_events", sub)):
            table = pa.Table.from_pandas(df, preserve_index=False)
            if name not in writers:
                writers[name] = pq.ParquetWriter(root / f"{name}.parquet", table.schema)
            writers[name].write_table(table, row_group_size=1_000_000)
        del db, tasks, events, sub
        log(f"  data {size}: piece {seed + 1}/{len(pieces)} ({n} leaf rows) written, "
            f"{time.perf_counter() - t0:.0f} s")
    for w in writers.values():
        w.close()
    written = time.perf_counter() - t0
    fdb = Database.from_parquet(root, memory_rows=0)
    X = task.split(fdb, "train")[0]
    np.savez(root / "rows.npz", ids=np.asarray(X.entity_ids), cutoffs=np.asarray(X.cutoffs, dtype="datetime64[ns]"))
    info = {"leaf_rows": size, "pieces": len(pieces), "rows": len(X), "generate_seconds": written,
            "rows_seconds": time.perf_counter() - t0 - written,
            "parquet_mb": sum(f.stat().st_size for f in root.glob("*.parquet")) / 2**20,
            "tables": {name: len(fdb[name]) for name in fdb}}
    done.write_text(json.dumps(info))
    return info


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


def _dir_bytes(path: str) -> int:
    total = 0
    for base, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(base, f))
            except OSError:  # a spill file removed while walking
                pass
    return total


def _event_log_metrics(log_dir: str) -> dict:
    """Task metrics summed over a Spark event log: executor run time, spills, shuffle writes."""
    out = {"tasks": 0, "executor_run_s": 0.0, "executor_cpu_s": 0.0, "disk_spilled_mb": 0.0, "memory_spilled_mb": 0.0,
           "shuffle_written_mb": 0.0}
    for path in glob.glob(os.path.join(log_dir, "**", "*"), recursive=True):
        if not os.path.isfile(path):
            continue
        with open(path) as fh:
            for line in fh:
                if '"SparkListenerTaskEnd"' not in line:
                    continue
                m = json.loads(line).get("Task Metrics") or {}
                out["tasks"] += 1
                out["executor_run_s"] += m.get("Executor Run Time", 0) / 1000
                out["executor_cpu_s"] += m.get("Executor CPU Time", 0) / 1e9
                out["disk_spilled_mb"] += m.get("Disk Bytes Spilled", 0) / 2**20
                out["memory_spilled_mb"] += m.get("Memory Bytes Spilled", 0) / 2**20
                out["shuffle_written_mb"] += (m.get("Shuffle Write Metrics") or {}).get("Shuffle Bytes Written",
                                                                                       0) / 2**20
    return out


def worker(args) -> None:
    import numpy as np
    import psutil

    from skrel.data import Database, RelationalDataset
    from skrel.features import DFSTransformer

    data = Path(args.data_dir)
    scratch = Path(args.scratch)
    db = Database.from_parquet(data, memory_rows=0)
    rows = np.load(data / "rows.npz")
    X = RelationalDataset(db, "entities", rows["ids"], rows["cutoffs"])
    session = None
    spill_dir = str(scratch / "spill")
    events_dir = str(scratch / "events")
    os.makedirs(spill_dir, exist_ok=True)
    if args.worker == "spark":
        from pyspark.sql import SparkSession

        os.makedirs(events_dir, exist_ok=True)
        session = (SparkSession.builder.master("local[*]").appName("skrel-benchmark")
                   .config("spark.driver.memory", args.spark_memory)
                   .config("spark.sql.shuffle.partitions", str(2 * (os.cpu_count() or 1)))
                   .config("spark.local.dir", spill_dir)
                   .config("spark.eventLog.enabled", "true").config("spark.eventLog.dir", "file://" + events_dir)
                   .config("spark.eventLog.compress", "false").config("spark.eventLog.rolling.enabled", "false")
                   .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
                   .getOrCreate())
        session.sparkContext.setLogLevel("ERROR")
        session.sql("SELECT count(*) FROM range(1000)").collect()  # the JVM is up and warm
        options = dict(spark=session)
    else:
        import duckdb  # noqa: F401

        options = dict(memory_limit=args.memory_limit, temp_directory=spill_dir)
    t = DFSTransformer(max_depth=args.depth, engine=args.worker, **options).fit(X)

    proc = psutil.Process()
    base = _tree_rss(proc)
    spill0 = _dir_bytes(spill_dir)
    with watch_peaks(rss=(lambda: _tree_rss(proc), 0.01), spill=(lambda: _dir_bytes(spill_dir) - spill0, 0.1)) as peak:
        t0 = time.perf_counter()
        F = t.transform(X)
        seconds = time.perf_counter() - t0
    loaded = sorted(name for name in db if getattr(db[name], "loaded", True))
    F.to_pickle(args.out)
    cores = os.cpu_count() or 1
    result = dict(seconds=seconds, peak_mb=peak["rss"] / 2**20, base_mb=base / 2**20, rows=len(X), features=F.shape[1],
                  leaf_rows=args.size, cores=cores, spill_dir_peak_mb=peak["spill"] / 2**20,
                  rows_per_core_s=args.size / seconds / cores, tables_loaded=loaded)
    if session is not None:
        session.stop()  # flushes the event log
        result.update(_event_log_metrics(events_dir))
        if result["executor_run_s"] > 0:
            result["rows_per_task_s"] = args.size / result["executor_run_s"]
    print("RESULT " + json.dumps(result), flush=True)


# ------------------------------------------------------------------------------------------ parent
def run_engine(engine: str, size: int, data: Path, args, out: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"skrel-bench-{engine}-") as scratch:
        cmd = [sys.executable, __file__, "--worker", engine, "--size", str(size), "--depth", str(args.depth),
               "--spark-memory", args.spark_memory, "--memory-limit", args.memory_limit, "--out", str(out),
               "--data-dir", str(data), "--scratch", scratch]
        logs = [open(os.path.join(scratch, name), "w+") for name in ("stdout", "stderr")]
        # its own process group: stopping it stops Spark's JVM with it
        proc = subprocess.Popen(cmd, stdout=logs[0], stderr=logs[1], text=True, start_new_session=True)
        t0, stopped = time.monotonic(), None
        while proc.poll() is None:
            time.sleep(2)
            elapsed = time.monotonic() - t0
            used = _dir_bytes(scratch) / 2**30
            free = shutil.disk_usage(scratch).free / 2**30
            if elapsed > args.timeout:
                stopped = f"timed out after {args.timeout} s (session start and fit included)"
            elif used > args.max_scratch_gb or free < args.min_free_gb:
                stopped = (f"stopped after {elapsed:.0f} s (session start and fit included): its spill and shuffle "
                           f"files reached {used:.0f} GB ({free:.0f} GB left on the disk; limits "
                           f"--max-scratch-gb {args.max_scratch_gb:g}, --min-free-gb {args.min_free_gb:g})")
            if stopped:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return {"error": stopped}
        for fh in logs:
            fh.seek(0)
        stdout, stderr = (fh.read() for fh in logs)
        for fh in logs:
            fh.close()
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    text = (stderr or "") + (stdout or "")
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
    bad, where = 0, {}
    for col in a.columns:
        x, y = a[col].to_numpy(), b[col].to_numpy()
        if x.dtype == object or y.dtype == object:
            k = sum(not ((u is None and v is None) or u == v) for u, v in zip(x, y))
            detail = "categories"
        else:
            x, y = x.astype(float), y.astype(float)
            off = ~((np.isnan(x) & np.isnan(y)) | np.isclose(x, y, rtol=1e-9, atol=0.0))
            k = int(off.sum())
            with np.errstate(divide="ignore", invalid="ignore"):
                rel = np.abs(x[off] - y[off]) / np.abs(x[off])
            detail = f"max relative difference {np.nanmax(rel):.1e}" if k and np.isfinite(rel).any() else "missing"
        if k:
            bad += k
            where[col] = f"{k} ({detail})"
    if bad == 0:
        return "identical (floats within 1e-9)"
    cols = "; ".join(f"{c}: {v}" for c, v in list(where.items())[:4])
    return f"{bad} of {a.size} values differ ({cols})"


HEADER = (f"{'leaf rows':>11s} {'X rows':>6s} {'feats':>5s} {'duckdb s':>8s} {'spark s':>8s} {'ratio':>6s} "
          f"{'duckdb MB':>9s} {'spark MB':>8s} {'ratio':>5s} {'ddb spill':>9s} {'spk spill':>9s} "
          f"{'spk shuf':>8s} {'ddb r/s/core':>12s} {'spk r/s/core':>12s} {'spk r/task-s':>12s}  values")


def _fmt(r: dict) -> str:
    d, s = r.get("duckdb", {}), r.get("spark", {})
    if "seconds" not in d:
        return f"{r['leaf_rows']:>11,d} ERROR duckdb: {d.get('error', 'not run')[:300]}"
    x = f"{r['leaf_rows']:>11,d} {d['rows']:>6d} {d['features']:>5d} {d['seconds']:>8.1f} "
    if "seconds" in s:
        x += f"{s['seconds']:>8.1f} {s['seconds'] / d['seconds']:>5.1f}x "
    else:
        x += f"{'-':>8s} {'-':>6s} "
    x += f"{d['peak_mb']:>9.0f} "
    if "seconds" in s:
        x += f"{s['peak_mb']:>8.0f} {s['peak_mb'] / d['peak_mb']:>5.2f} "
    else:
        x += f"{'-':>8s} {'-':>5s} "
    x += f"{d['spill_dir_peak_mb']:>7.0f}MB "
    if "seconds" in s:
        x += (f"{s['disk_spilled_mb']:>7.0f}MB {s['shuffle_written_mb']:>6.0f}MB {d['rows_per_core_s']:>12,.0f} "
              f"{s['rows_per_core_s']:>12,.0f} {s.get('rows_per_task_s', float('nan')):>12,.0f}  {r['values']}")
    else:
        x += (f"{'-':>9s} {'-':>8s} {d['rows_per_core_s']:>12,.0f} {'-':>12s} {'-':>12s}  "
              f"spark: {s.get('error', 'not run')[:200]}")
    return x


def _power_law(points):
    """``(a, b)`` of ``seconds = a * rows**b`` through the last two measured points (log-log)."""
    (n0, t0), (n1, t1) = points[-2], points[-1]
    b = math.log(t1 / t0) / math.log(n1 / n0)
    return t1 / n1**b, b


def analysis(runs: list[dict], args) -> list[str]:
    """The crossover and the cluster estimate, as markdown lines."""
    ok = [r for r in runs if "seconds" in r.get("duckdb", {}) and "seconds" in r.get("spark", {})]
    out = ["## Crossover (Spark local within 1x of DuckDB)", ""]
    if not ok:
        return out + ["No size has both engines measured: no crossover can be stated.", ""]
    within = [r for r in ok if r["spark"]["seconds"] <= r["duckdb"]["seconds"]]
    if within:
        r = within[0]
        out.append(f"Measured: Spark local takes at most DuckDB's time from {r['leaf_rows']:,} leaf rows "
                   f"({r['spark']['seconds']:.1f} s against {r['duckdb']['seconds']:.1f} s).")
    else:
        ratios = ", ".join(f"{r['spark']['seconds'] / r['duckdb']['seconds']:.1f}x at {r['leaf_rows']:,}" for r in ok)
        out.append(f"Measured: none. Spark local is slower than DuckDB at every measured size ({ratios}).")
        if len(ok) >= 2:
            ad, bd = _power_law([(r["leaf_rows"], r["duckdb"]["seconds"]) for r in ok])
            as_, bs = _power_law([(r["leaf_rows"], r["spark"]["seconds"]) for r in ok])
            text = (f"**Estimate, not measured**: fitting `seconds = a * rows^b` through the two largest sizes "
                    f"measured for both gives b = {bd:.2f} for DuckDB and {bs:.2f} for Spark local")
            if bs < bd:
                n = (as_ / ad) ** (1 / (bd - bs))
                text += (f"; taken at face value the lines cross near {n:,.0f} leaf rows, far outside what was "
                         "measured. That is not a prediction: Spark's slower growth comes from amortising its "
                         "fixed per-query cost, which stops once that cost is negligible.")
            else:
                text += "; Spark's time does not grow more slowly, so the lines do not cross."
            out.append("")
            out.append(text)
        last = ok[-1]
        if last["spark"].get("rows_per_task_s"):
            asym = last["duckdb"]["rows_per_core_s"] / last["spark"]["rows_per_task_s"]
            out.append("")
            out.append(
                f"**Estimate, not measured**: once fixed costs are amortised both engines are bound by their "
                f"per-core throughput. At {last['leaf_rows']:,} leaf rows DuckDB did "
                f"{last['duckdb']['rows_per_core_s']:,.0f} leaf rows per second per core (wall time) and Spark's "
                f"tasks {last['spark']['rows_per_task_s']:,.0f} per task-second, so on the same cores Spark local "
                f"would stay about {asym:.1f}x slower however large the data: no crossover on one machine is "
                "expected. Spark's advantage is the cores it can add, not its speed per core.")
    out += ["", "## Paper estimate of a cluster (not measured)", ""]
    s = ok[-1]["spark"]
    if not s.get("executor_run_s"):
        return out + ["No Spark task metrics: no estimate.", ""]
    cores = s["cores"]
    total = args.nodes * args.node_cores
    fixed_of = {r["leaf_rows"]: max(0.0, r["spark"]["seconds"] - r["spark"]["executor_run_s"] / r["spark"]["cores"])
                for r in ok if r["spark"].get("executor_run_s")}
    fixed = max(fixed_of.values())
    per_row = s["executor_run_s"] / s["leaf_rows"]
    out.append(
        f"From the largest size measured on both engines ({s['leaf_rows']:,} leaf rows): Spark's tasks ran "
        f"{s['executor_run_s']:.1f} core-seconds in all ({s['tasks']} tasks"
        + (f"; {s['executor_cpu_s']:.1f} s of it on CPU" if s.get("executor_cpu_s") else "") + "), i.e. "
        f"{s.get('rows_per_task_s', 0):,.0f} leaf rows per task-second (per core; smaller sizes gave fewer: "
        + ", ".join(f"{r['spark']['rows_per_task_s']:,.0f} at {r['leaf_rows']:,}" for r in ok
                    if r["spark"].get("rows_per_task_s") and r is not ok[-1])
        + "). The wall time not spent in tasks on the "
        f"{cores} local cores (wall minus task time / cores: "
        + ", ".join(f"{v:.1f} s at {n:,}" for n, v in sorted(fixed_of.items()))
        + f") is taken as a fixed per-run overhead (planning, scheduling, the driver's share), its largest "
        f"value, {fixed:.1f} s. Task time includes waiting for the shared CPU, so the per-core rate is "
        "pessimistic for a dedicated core. Assumptions: "
        f"{args.nodes} nodes x {args.node_cores} cores = {total} cores, task time spread evenly over them (no "
        f"skew, enough partitions: `spark.sql.shuffle.partitions` >= {2 * total}), times "
        f"1 + {args.shuffle_overhead:g} for shuffling over the network instead of local disk, task time linear "
        "in the leaf rows, and the fixed overhead unchanged. Estimate: seconds = fixed + "
        f"rows x {per_row:.3g} core-s/row x {1 + args.shuffle_overhead:g} / {total}.")
    out.append("")
    out.append(f"| leaf rows | estimated {args.nodes}-node seconds | of which task time | DuckDB on this machine |")
    out.append("|---:|---:|---:|---:|")
    measured = {r["leaf_rows"]: r["duckdb"].get("seconds") for r in runs if "seconds" in r.get("duckdb", {})}
    for n in sorted(set([10**6, 10**7, 10**8, 10**9]) | set(measured)):
        task = n * per_row * (1 + args.shuffle_overhead) / total
        ddb = f"{measured[n]:.1f} s (measured)" if n in measured else "not measured"
        out.append(f"| {n:,} | {fixed + task:.1f} | {task:.1f} | {ddb} |")
    out.append("")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", nargs="+", type=int, default=[1_000_000, 10_000_000])
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--timeout", type=int, default=900, help="seconds per engine and size")
    parser.add_argument("--spark-memory", default="4g")
    parser.add_argument("--memory-limit", default="2GB", help="DuckDB's memory_limit (it spills beyond)")
    parser.add_argument("--chunk-rows", type=int, default=10_000_000, help="leaf rows per generated piece")
    parser.add_argument("--data", help="directory to keep (and reuse) the generated Parquet databases")
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--node-cores", type=int, default=16)
    parser.add_argument("--shuffle-overhead", type=float, default=0.5)
    parser.add_argument("--max-scratch-gb", type=float, default=40.0,
                        help="stop an engine whose spill and shuffle files exceed this")
    parser.add_argument("--min-free-gb", type=float, default=12.0,
                        help="stop an engine when the disk has less than this left")
    standard_flags(parser)  # --no-save, --render (only rewrite distributed.md from the JSON)
    parser.add_argument("--report", dest="render", action="store_true", help=argparse.SUPPRESS)  # its old name
    parser.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    parser.add_argument("--scratch", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return 0

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    desc = machine("duckdb", "pyspark", memory=True, python=True) + f", {java_version()}"
    if args.render:
        save({}, desc, args)
        return 0
    log(f"machine: {desc}")
    keep = args.data is not None
    data_root = Path(args.data) if keep else Path(tempfile.mkdtemp(prefix="skrel-bench-data-"))
    print(HEADER, flush=True)
    rows = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for size in args.rows:
                info = generate(size, data_root / str(size), args.chunk_rows, log)
                log(f"  data {size}: {info['parquet_mb']:.0f} MB of Parquet, {info['rows']} rows of X")
                res = {e: run_engine(e, size, data_root / str(size), args, Path(tmp) / f"{size}-{e}.pkl")
                       for e in args.engines}
                row = {"leaf_rows": size, "depth": args.depth, "data": info, "machine": desc,
                       "memory_limit": args.memory_limit, "spark_memory": args.spark_memory,
                       "date": time.strftime("%Y-%m-%d %H:%M"), **res}
                d, s = res.get("duckdb", {}), res.get("spark", {})
                row["values"] = (compare(Path(tmp) / f"{size}-duckdb.pkl", Path(tmp) / f"{size}-spark.pkl")
                                 if "seconds" in d and "seconds" in s else "n/a")
                print(_fmt(row), flush=True)
                rows[f"files-{size}-depth{args.depth}"] = row
                if not keep:
                    shutil.rmtree(data_root / str(size), ignore_errors=True)
    finally:
        if not keep:
            shutil.rmtree(data_root, ignore_errors=True)
    if not args.no_save:
        save(rows, desc, args)
    return 0


def save(rows: dict, desc: str, args) -> None:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "distributed.json"
    store = json.loads(path.read_text()) if path.exists() else {"runs": {}}
    store["runs"].update(rows)
    stamp_rows(store, desc)
    path.write_text(json.dumps(store, indent=1) + "\n")
    runs = sorted((r for r in store["runs"].values() if r["depth"] == args.depth), key=lambda r: r["leaf_rows"])
    md = [
        "# DFS on DuckDB (anchor) and Spark local mode, both reading Parquet files",
        "",
        f"{machines_line(store)}. Synthetic database (`make_synthetic`, 1,000 entities, depth {args.depth}: "
        "`sub_events` has the leaf rows, `events` half as many), written to Parquet once per size and opened "
        "with `Database.from_parquet(dir, memory_rows=0)`: every table stays in its file, DuckDB "
        "(`read_parquet`) and Spark (`read.parquet`) read them where they lie, and no table was loaded into "
        "the Python process (checked per run). X: the task's training rows. `DFSTransformer`, every "
        "primitive, no windows. Each engine in its own subprocess.",
        "",
        "Columns: seconds of `transform` only (data written, transformer fitted, engine imported and, for "
        "Spark, a `local[*]` session started and warmed before timing) and ratio Spark / DuckDB; MB: peak "
        "resident memory of the process and its children (Spark's JVM) during `transform`, and ratio; "
        "`ddb spill`: peak size of DuckDB's `temp_directory` (memory_limit "
        f"{args.memory_limit}); `spk spill`: bytes Spark's tasks spilled to disk (event log); `spk shuf`: "
        "shuffle bytes Spark's tasks wrote (to `spark.local.dir`); `r/s/core`: leaf rows / seconds / cores; "
        "`spk r/task-s`: leaf rows per second of Spark task time (per-partition throughput). Values: the two "
        "engines' features compared (missing equals missing, floats within 1e-9 relative). The CPU is shared "
        "with other jobs: timings are noisy. Command: `nice -n 10 python benchmarks/distributed.py "
        f"--rows {' '.join(str(r['leaf_rows']) for r in runs)}`.",
        "",
        "```",
        HEADER,
    ]
    md += [_fmt(r) for r in runs]
    md += ["```", ""]
    md += [f"Note ({r['leaf_rows']:,} leaf rows): {r['note']}\n" for r in runs if r.get("note")]
    md += analysis(runs, args)
    md += ["## Data generation (outside the timed part)", "", "| leaf rows | pieces | Parquet MB | seconds to write |",
           "|---:|---:|---:|---:|"]
    md += [f"| {r['leaf_rows']:,} | {r['data']['pieces']} | {r['data']['parquet_mb']:.0f} | "
           f"{r['data']['generate_seconds']:.0f} |" for r in runs if "data" in r]
    (RESULTS / "distributed.md").write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
