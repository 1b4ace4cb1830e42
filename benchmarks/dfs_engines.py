"""Deep feature synthesis: skrel's DuckDB engine against featuretools (the anchor), same rows, same features.

    python benchmarks/dfs_engines.py [--rows 10000 100000 1000000] [--no-f1] [--depth 2]
                                     [--threads 2] [--memory-limit 2GB] [--ft-timeout 1800]
                                     [--ft-max-cutoffs K] [--json] [--no-save]

Datasets: rel-f1 (the three driver tasks' training rows, ``--path``) and the synthetic generator
(``skrel.datasets.synthetic.make_synthetic``, 1,000 entities) with ``--rows`` rows in its largest
table, its task's training rows. Features: ``DFSTransformer(max_depth=--depth)`` with every
aggregation primitive and no windows (featuretools' ``dfs(..., trans_primitives=[])``).

Each engine runs in its own subprocess, which loads the data, imports its engine, then measures
wall time and peak resident memory (psutil, polled every 5 ms, and ``ru_maxrss``) of the feature
computation. Memory is reported as the process peak and as the peak above the process's memory
once the data is loaded and the engine imported (the engine's own memory). The parent checks that
both engines give the same feature names and values (missing equals missing, floats within 1e-9
relative) and prints the ratios; the last line is ``speedup: X`` for the largest size run.

featuretools runs single-process (``n_jobs=1``); DuckDB uses ``--threads`` threads. With
``--ft-max-cutoffs K`` featuretools computes only the rows of K evenly spaced distinct cutoff dates
and its time is extrapolated linearly to all of them; the output says so on every such line.
Results merge into ``benchmarks/results/dfs_engines.json`` and ``dfs_engines.md``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import F1_PATH, RESULTS, machine, standard_flags, watch_peaks


# ------------------------------------------------------------------------------------------ worker
def load(dataset: str, size: int, f1_path: str):
    import numpy as np

    from skrel.data import RelationalDataset

    if dataset == "f1":
        from skrel.datasets import load_f1

        db, tasks = load_f1(f1_path)
        parts = [task.split(db, "train")[0] for task in tasks.values()]
        ids = np.concatenate([X.entity_ids for X in parts])
        cuts = np.concatenate([X.cutoffs for X in parts])
        return RelationalDataset(db, "drivers", ids, cuts)
    from skrel.datasets.synthetic import make_synthetic

    db, tasks = make_synthetic(n_entities=1000, n_rows=size, random_state=0)
    return tasks["synthetic"].split(db, "train")[0]


def worker(args) -> None:
    import numpy as np
    import psutil

    from skrel.features import DFSTransformer

    X = load(args.dataset, args.size, args.path)
    duck = args.worker == "duckdb"
    t = DFSTransformer(max_depth=args.depth, engine=args.worker, n_jobs=args.threads if duck else None,
                       memory_limit=args.memory_limit if duck else None).fit(X)
    note = ""
    if args.worker == "featuretools":
        import featuretools  # noqa: F401  (imported before the baseline memory is read)

        if args.ft_max_cutoffs:
            dates = np.unique(X.cutoffs)
            if len(dates) > args.ft_max_cutoffs:
                keep = dates[np.linspace(0, len(dates) - 1, args.ft_max_cutoffs).round().astype(int)]
                note = f"featuretools ran on {args.ft_max_cutoffs} of {len(dates)} cutoff dates; time extrapolated"
                scale = len(dates) / args.ft_max_cutoffs
                X = X[np.isin(X.cutoffs, keep)]
    else:
        import duckdb  # noqa: F401

    proc = psutil.Process()
    base = proc.memory_info().rss
    with watch_peaks(rss=(lambda: proc.memory_info().rss, 0.005)) as peak:
        t0 = time.perf_counter()
        F = t.transform(X)
        seconds = time.perf_counter() - t0
    import resource

    peak_rss = max(peak["rss"], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    F.to_pickle(args.out)
    np.save(str(args.out) + ".rows.npy", np.asarray(X.cutoffs).view("int64"))
    result = dict(seconds=seconds, peak_mb=peak_rss / 2**20, base_mb=base / 2**20, rows=len(X), features=F.shape[1],
                  note=note)
    if note:
        result["measured_seconds"] = seconds
        result["seconds"] = seconds * scale
    print("RESULT " + json.dumps(result), flush=True)


# ------------------------------------------------------------------------------------------ parent
def run_engine(engine: str, dataset: str, size: int, args, out: Path, memory_limit=None) -> dict:
    cmd = [sys.executable, __file__, "--worker", engine, "--dataset", dataset, "--size", str(size),
           "--depth", str(args.depth), "--threads", str(args.threads), "--path", args.path, "--out", str(out)]
    if memory_limit or args.memory_limit:
        cmd += ["--memory-limit", memory_limit or args.memory_limit]
    if args.ft_max_cutoffs:
        cmd += ["--ft-max-cutoffs", str(args.ft_max_cutoffs)]
    timeout = args.ft_timeout if engine == "featuretools" else None
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"error": (proc.stderr or proc.stdout)[-2000:]}


def compare(a_path: Path, b_path: Path) -> str:
    import numpy as np
    import pandas as pd

    a, b = pd.read_pickle(a_path), pd.read_pickle(b_path)
    rows_a, rows_b = np.load(str(a_path) + ".rows.npy"), np.load(str(b_path) + ".rows.npy")
    if len(a) != len(b):  # featuretools ran on a subsample of cutoff dates
        keep = np.isin(rows_a, np.unique(rows_b))
        a = a[keep].reset_index(drop=True)
    if list(a.columns) != list(b.columns):
        return "DIFFERENT feature names"
    bad = 0
    for col in a.columns:
        x, y = a[col].to_numpy(), b[col].to_numpy()
        if x.dtype == object or y.dtype == object:
            bad += sum(not ((u is None and v is None) or u == v) for u, v in zip(x, y))
        else:
            x, y = x.astype(float), y.astype(float)
            bad += int((~((np.isnan(x) & np.isnan(y)) | np.isclose(x, y, rtol=1e-9, atol=0.0))).sum())
    cells = a.shape[0] * a.shape[1]
    return "identical" if bad == 0 else f"{bad} of {cells} values differ"


def _report(label, size, d, f, key, name, tmp, args, results, lines, last_speedup):
    row = {"dataset": label, "leaf_rows": size or None, "duckdb": d, "featuretools": f}
    if "error" in d or "error" in f:
        row["values"] = "n/a"
        text = f"{label:20s} ERROR duckdb: {d.get('error', 'ok')[:300]} featuretools: {f.get('error', 'ok')[:300]}"
    else:
        row["values"] = compare(Path(tmp) / f"{name}-{key}.pkl", Path(tmp) / f"{name}-featuretools.pkl")
        row["speedup"] = f["seconds"] / d["seconds"]
        row["peak_ratio"] = d["peak_mb"] / f["peak_mb"]
        d_own, f_own = d["peak_mb"] - d["base_mb"], f["peak_mb"] - f["base_mb"]
        row["own_memory_ratio"] = d_own / f_own if f_own > 0 else None
        if key == "duckdb":
            last_speedup = row["speedup"]
        text = (f"{label:20s} {d['rows']:>6d} {d['features']:>5d} {f['seconds']:>14.1f} {d['seconds']:>9.2f} "
                f"{row['speedup']:>7.0f}x {f['peak_mb']:>10.0f} {d['peak_mb']:>10.0f} {row['peak_ratio']:>6.2f} "
                f"{f_own:>7.0f} {d_own:>7.0f} {row['own_memory_ratio'] or float('nan'):>6.2f}  {row['values']}")
        if f.get("note"):
            text += f"  [{f['note']}: measured {f['measured_seconds']:.1f} s on {f['rows']} rows]"
    results.append(row)
    lines.append(text)
    if not args.json:
        print(text, flush=True)
    return last_speedup


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", nargs="+", type=int, default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--no-f1", action="store_true")
    parser.add_argument("--path", default=str(F1_PATH))
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-limit", default=None)
    parser.add_argument("--low-memory", default=None, metavar="LIMIT",
                        help="also run DuckDB with this memory limit (e.g. 150MB) at the largest size")
    parser.add_argument("--ft-timeout", type=int, default=1800)
    parser.add_argument("--ft-max-cutoffs", type=int, default=None)
    parser.add_argument("--json", action="store_true")
    standard_flags(parser, render=False)  # --no-save (the markdown is written from the run, not the JSON)
    parser.add_argument("--worker", choices=["duckdb", "featuretools"], help=argparse.SUPPRESS)
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return 0

    runs = ([] if args.no_f1 else [("f1", 0)]) + [("synthetic", n) for n in args.rows]
    lines = []
    results = []
    header = (f"{'dataset':20s} {'rows':>6s} {'feats':>5s} {'featuretools s':>14s} {'duckdb s':>9s} "
              f"{'speedup':>8s} {'ft peak MB':>10s} {'db peak MB':>10s} {'ratio':>6s} {'ft +MB':>7s} {'db +MB':>7s} "
              f"{'ratio':>6s}  values")
    desc = machine("duckdb", "featuretools", memory=True, python=True)
    print(f"machine: {desc}", file=sys.stderr)
    print(f"duckdb threads: {args.threads}, memory limit: {args.memory_limit or 'DuckDB default'}; "
          "featuretools: one process (n_jobs=1)", file=sys.stderr)
    if not args.json:
        print(header, flush=True)
    last_speedup = None
    with tempfile.TemporaryDirectory() as tmp:
        for dataset, size in runs:
            name = "f1" if dataset == "f1" else f"synthetic-{size:.0e}".replace("+0", "")
            out = {}
            for engine in ("duckdb", "featuretools"):
                out[engine] = run_engine(engine, dataset, size, args, Path(tmp) / f"{name}-{engine}.pkl")
            variants = [(name, out["duckdb"], "duckdb")]
            if args.low_memory and (dataset, size) == runs[-1]:
                low = run_engine("duckdb", dataset, size, args, Path(tmp) / f"{name}-duckdb-low.pkl", args.low_memory)
                variants.append((f"{name}@{args.low_memory}", low, "duckdb-low"))
            for label, d, key in variants:
                last_speedup = _report(label, size, d, out["featuretools"], key, name, tmp, args, results, lines,
                                       last_speedup)
    summary = f"speedup: {last_speedup:.0f}" if last_speedup is not None else "speedup: n/a"
    report = {"machine": desc, "threads": args.threads, "memory_limit": args.memory_limit, "depth": args.depth,
              "runs": results, "speedup": last_speedup,
              "date": time.strftime("%Y-%m-%d %H:%M")}
    if args.json:
        print(json.dumps(report, indent=1))
        print(summary)
    else:
        print(summary)
    if not args.no_save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "dfs_engines.json").write_text(json.dumps(report, indent=1) + "\n")
        md = [
            "# DFS engines: DuckDB (skrel) vs featuretools",
            "",
            f"Machine: {desc}. {report['date']}. DuckDB threads: {args.threads}, memory limit: "
            f"{args.memory_limit or 'DuckDB default'}; featuretools one process. Depth {args.depth}, all primitives, "
            "no windows. `+MB`: peak resident memory above the process's memory once data is loaded and the engine "
            "imported; `ratio`: DuckDB / featuretools. `NAME@LIMIT`: DuckDB again with that memory limit (spilling "
            "to disk), against the same featuretools run. Values: both engines' features compared (missing equals "
            "missing, floats within 1e-9 relative). CPU shared with other jobs: timings are noisy.",
            "",
            "```",
            header,
            *lines,
            summary,
            "```",
            "",
        ]
        (RESULTS / "dfs_engines.md").write_text("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
