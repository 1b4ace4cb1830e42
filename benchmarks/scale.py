"""How skrel's data-heavy steps grow with rows and columns, on the ``wide`` synthetic database.

Steps (each in its own subprocess, so that its peak resident memory is its own):

- ``generate``: ``make_wide`` and the training labels of ``player-form`` (the base every other
  step starts from; its peak is the floor under theirs);
- ``dfs``: ``DFSTransformer(...).fit(X, y).transform(X)`` of the training rows, DuckDB engine,
  with ``DFSEstimator``'s default depth, windows and feature budget (``max_features``, pruning
  included) unless ``--dfs-depth`` / ``--dfs-windows`` / ``--dfs-max-features`` say;
- ``graph``: ``skrel.graph.build_graph`` of the training database;
- ``materialize``: ``skrel.graph.feature_spec`` (which materialises every table of the training
  database) then ``materialize`` of the full database with that spec;
- ``sampler``: ``TemporalSampler`` with RDL's default fan-outs ``[128, 64]`` over up to
  ``--seeds`` training seeds in batches of 512 (graph building is not timed, but counts in the
  peak).

Sizes: the largest table (``appearances``) from 10^5 to 10^7 rows at the default 160 columns
(``make_wide(scale=rows / 506_000)``), and from 50 to 500 columns at the default size
(``n_columns``). Seconds are the step's own (not the generation); ``peak_rss_mb`` is the
subprocess's peak resident set (``os.wait4``'s ``ru_maxrss``), generation included;
``base_rss_mb`` is its resident set just before the step. A step that runs past ``--timeout``
or above ``--max-rss-mb`` is killed and recorded as ``"timeout"`` / ``"memory cap"`` (its peak
then is a lower bound). Growth is summarised by the log-log slope of seconds and of peak RSS
against rows (or columns) over the sizes that completed.

Prints a table, the ratios and slopes, and as the last line ``peak_rss_mb: X`` for DFS with
``DFSEstimator``'s defaults (whatever ``--dfs-*`` say) at the default ``wide`` size (scale 1,
160 columns); ``--append`` reuses that measurement when the saved results have it. Results go to
``benchmarks/results/scale.{json,md}`` with the machine description (not with ``--no-save``; ``--render``
only rewrites the markdown).

Usage::

    python benchmarks/scale.py [--rows 1e5,1e6,1e7] [--columns 50,160,500] [--steps dfs,graph,...]
                               [--timeout 900] [--max-rss-mb 10000] [--dfs-depth 2]
                               [--dfs-windows 30,90,365|none] [--seeds 20000] [--append] [--no-save]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _common import RESULTS, ROOT, command_line, machine_record, standard_flags

STEPS = ("generate", "dfs", "graph", "materialize", "sampler")
DEFAULT_ROWS = 506_000  # rows of ``appearances`` at scale 1
DEFAULT_COLUMNS = 160
RESULT = "SCALE-RESULT "


# ---------------------------------------------------------------------------------------- child
def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def child(args) -> dict:
    """Run one step in this process and return what it measured."""
    from skrel.datasets import make_wide

    t0 = time.perf_counter()
    db, tasks = make_wide(scale=args.scale, n_columns=args.n_columns, random_state=0)
    t_gen = time.perf_counter() - t0
    task = tasks["player-form"]
    t0 = time.perf_counter()
    X, y = task.split(db, "train")
    t_labels = time.perf_counter() - t0
    out = {
        "largest_table_rows": int(len(db["appearances"])),
        "total_rows": int(sum(len(db[t]) for t in db.table_names)),
        "columns": int(sum(len([c for c in db[t].df.columns if c not in {db[t].pkey, db[t].time_col, *db[t].fkeys}])
                           for t in db.table_names)),
        "train_rows": int(len(X)),
        "generate_s": round(t_gen, 3),
        "labels_s": round(t_labels, 3),
    }
    step = args.child
    if step == "generate":
        out["seconds"] = round(t_gen + t_labels, 3)
        out["base_rss_mb"] = 0.0
        return out
    out["base_rss_mb"] = round(_rss_mb(), 1)
    print("SCALE-STEP-START", flush=True)  # the parent's timeout counts from here
    if step == "dfs":
        from skrel.features.dfs import DFSTransformer

        t0 = time.perf_counter()  # with the estimator's feature budget (pruning included) unless told
        F = DFSTransformer(max_depth=args.dfs_depth, windows=args.dfs_windows, engine="duckdb",
                           max_features=args.dfs_max_features or None).fit(X, y).transform(X)
        out["max_features"] = args.dfs_max_features
        out["seconds"] = round(time.perf_counter() - t0, 3)
        out["features"] = int(F.shape[1])
        out["output_mb"] = round(float(F.memory_usage(deep=False).sum()) / 2**20, 1)
    elif step == "graph":
        from skrel.graph import build_graph

        t0 = time.perf_counter()
        g = build_graph(X.db)
        out["seconds"] = round(time.perf_counter() - t0, 3)
        out["nodes"] = int(sum(g.num_nodes.values()))
        out["edges"] = int(sum(len(col) for _, col in g.adj.values()))
    elif step == "materialize":
        from skrel.graph import feature_spec, materialize

        t0 = time.perf_counter()
        spec = feature_spec(X.db)
        t_spec = time.perf_counter() - t0
        tfs = materialize(db, spec)
        out["seconds"] = round(time.perf_counter() - t0, 3)
        out["feature_spec_s"] = round(t_spec, 3)
        out["encoded_columns"] = int(sum(tf.num_cols for tf in tfs.values()))
    elif step == "sampler":
        from skrel.estimators.rdl import resolve_fanouts
        from skrel.graph import build_graph
        from skrel.graph.sampler import TemporalSampler, seed_salts

        g = build_graph(X.db)
        out["base_rss_mb"] = round(_rss_mb(), 1)
        fanouts = resolve_fanouts(128, 2)
        nodes = g.node_index("players", X.entity_ids)
        times = np.asarray(X.cutoffs).view(np.int64)
        rng = np.random.default_rng(0)
        pick = np.sort(rng.choice(len(nodes), size=min(args.seeds, len(nodes)), replace=False))
        nodes, times = nodes[pick], times[pick]
        sampler = TemporalSampler(g, fanouts, "uniform")
        t0 = time.perf_counter()
        sampled = 0
        for i in range(0, len(nodes), 512):
            sl = slice(i, i + 512)
            sub = sampler.sample("players", nodes[sl], times[sl], seed_salts(0, np.arange(len(nodes))[sl]))
            sampled += sub.total_nodes()
        out["seconds"] = round(time.perf_counter() - t0, 3)
        out["seeds"] = int(len(nodes))
        out["seeds_per_s"] = round(len(nodes) / max(out["seconds"], 1e-9), 1)
        out["nodes_per_seed"] = round(sampled / max(len(nodes), 1), 1)
    else:  # pragma: no cover - argparse restricts the choices
        raise ValueError(step)
    return out


# ---------------------------------------------------------------------------------------- parent
def step_label(step: str, args) -> str:
    """The step's name in results; DFS's carries its configuration."""
    if step != "dfs":
        return step
    label = f"dfs (depth {args.dfs_depth}, windows {','.join(map(str, args.dfs_windows or [])) or 'none'}"
    # runs before the feature budget existed computed every definition: their label has no budget
    return label + (f", max_features {args.dfs_max_features})" if args.dfs_max_features else ")")


def run_step(step: str, scale: float, n_columns: int, args) -> dict:
    """Run ``step`` in a subprocess; its seconds, peak RSS (``os.wait4``) and status."""
    import psutil

    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", step, "--scale", repr(scale),
           "--n-columns", str(n_columns), "--dfs-depth", str(args.dfs_depth),
           "--dfs-windows", ",".join(map(str, args.dfs_windows)) if args.dfs_windows else "none",
           "--dfs-max-features", str(args.dfs_max_features), "--seeds", str(args.seeds)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    ps = psutil.Process(proc.pid)
    start, step_start, status, sampled_peak = time.perf_counter(), None, "ok", 0.0
    stdout_chunks: list[str] = []
    # Read output in a thread so a chatty child never blocks on a full pipe.
    import threading

    def pump(stream, sink):
        for line in stream:
            sink.append(line)

    err_chunks: list[str] = []
    threads = [threading.Thread(target=pump, args=(proc.stdout, stdout_chunks), daemon=True),
               threading.Thread(target=pump, args=(proc.stderr, err_chunks), daemon=True)]
    for th in threads:
        th.start()
    while True:
        pid, wstatus, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        try:
            rss = ps.memory_info().rss / 2**20
        except psutil.Error:
            rss = 0.0
        sampled_peak = max(sampled_peak, rss)
        if step_start is None and any(line.startswith("SCALE-STEP-START") for line in stdout_chunks[-3:]):
            step_start = time.perf_counter()
        elapsed = time.perf_counter() - (step_start or start)
        # The timeout is the step's own; generation gets a generous bound of its own.
        limit = args.timeout if step_start is not None else max(args.timeout, 1800.0)
        if elapsed > limit or rss > args.max_rss_mb:
            status = "timeout" if elapsed > limit else "memory cap"
            os.killpg(proc.pid, 9)
            pid, wstatus, ru = os.wait4(proc.pid, 0)
            break
        time.sleep(0.1)
    proc.returncode = os.waitstatus_to_exitcode(wstatus)
    for th in threads:
        th.join(timeout=5)
    wall = time.perf_counter() - start
    peak = max(ru.ru_maxrss / 1024, sampled_peak)
    rec = {"step": step, "label": step_label(step, args), "scale": scale, "n_columns": n_columns, "status": status,
           "wall_s": round(wall, 1), "peak_rss_mb": round(peak, 1)}
    found = [json.loads(line[len(RESULT):]) for line in stdout_chunks if line.startswith(RESULT)]
    if found:
        rec.update(found[-1])
    elif status == "ok":
        rec["status"] = f"error (exit {proc.returncode})"
        rec["error"] = "".join(err_chunks)[-2000:]
    if status != "ok":
        rec["seconds"] = None
    # Sizes of a killed step: make_wide's row rule (22 appearances per game, 23,000 games at scale 1).
    rec.setdefault("largest_table_rows", 22 * max(10, round(23_000 * scale)))
    rec.setdefault("columns", n_columns)
    return rec


def slope(xs, ys) -> float | None:
    """Least-squares slope of log(y) on log(x) over the points where both are positive."""
    pts = [(x, y) for x, y in zip(xs, ys) if x and y and x > 0 and y > 0]
    if len(pts) < 2 or len({p[0] for p in pts}) < 2:
        return None
    lx, ly = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    return round(float(np.polyfit(lx, ly, 1)[0]), 2)


def summarise(records: list[dict], axis: str) -> list[dict]:
    out = []
    key = "largest_table_rows" if axis == "rows" else "columns"
    labels = list(dict.fromkeys(r.get("label", r["step"]) for r in records))
    for label in labels:
        recs = sorted((r for r in records if r.get("label", r["step"]) == label and r.get("axis") == axis
                       and r["status"] == "ok"), key=lambda r: r[key])
        if not recs:
            continue
        xs = [r[key] for r in recs]
        secs, rss = [r["seconds"] for r in recs], [r["peak_rss_mb"] for r in recs]
        row = {"step": label, "axis": axis, "from": xs[0], "to": xs[-1],
               "seconds_slope": slope(xs, secs), "peak_rss_slope": slope(xs, rss),
               "seconds_ratio": round(secs[-1] / secs[0], 2) if len(recs) > 1 and secs[0] else None,
               "peak_rss_ratio": round(rss[-1] / rss[0], 2) if len(recs) > 1 and rss[0] else None}
        out.append(row)
    return out


def _fmt(v, nd=1):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def markdown(result: dict) -> str:
    lines = ["# skrel scale benchmark (`benchmarks/scale.py`)", ""]
    for run in result["runs"]:
        m = run["machine"]
        lines += [
            f"- `{run['command']}`: DFS `DFSTransformer(max_depth={run['dfs_depth']}, windows={run['dfs_windows']})` "
            f"(DuckDB engine, fit_transform of the `player-form` training rows); sampler fan-outs {result['fanouts']}, "
            f"up to {run['seeds']} seeds; per-step timeout {run['timeout_s']:.0f} s, memory cap "
            f"{run['max_rss_mb']:.0f} MB. Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM, "
            f"Python {m['python']}; load average at start {m['load_average_at_start'][0]} (shared by several "
            "engineers: timings are noisy and pessimistic).",
        ]
    lines += [
        "",
        "Seconds are the step's own (generation excluded); peak RSS is the step's subprocess (generation "
        "included; a killed step's peak is a lower bound); base RSS is the subprocess's resident set just "
        "before the step. Rows: `make_wide(scale=rows / 506000)`; columns: `make_wide(n_columns=...)`.",
        "",
        "| axis | step | largest table rows | columns | train rows | status | seconds | base RSS MB | peak RSS MB | notes |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    for r in result["records"]:
        notes = []
        for k in ("features", "output_mb", "nodes", "edges", "encoded_columns", "seeds_per_s", "nodes_per_seed",
                  "feature_spec_s", "generate_s", "labels_s"):
            if k in r:
                notes.append(f"{k}={_fmt(r[k])}")
        lines.append(f"| {r.get('axis')} | {r.get('label', r['step'])} | {_fmt(r.get('largest_table_rows'))} | "
                     f"{_fmt(r.get('columns', r['n_columns']))} | {_fmt(r.get('train_rows'))} | {r['status']} | "
                     f"{_fmt(r.get('seconds'), 2)} | {_fmt(r.get('base_rss_mb'))} | {_fmt(r['peak_rss_mb'])} | "
                     f"{', '.join(notes)} |")
    lines += ["", "Growth (log-log slope over the sizes that completed; ratio = largest / smallest):", "",
              "| step | axis | from | to | seconds slope | seconds ratio | peak RSS slope | peak RSS ratio |",
              "|---|---|---:|---:|---:|---:|---:|---:|"]
    for s in result["growth"]:
        lines.append(f"| {s['step']} | {s['axis']} | {_fmt(s['from'])} | {_fmt(s['to'])} | {_fmt(s['seconds_slope'], 2)} "
                     f"| {_fmt(s['seconds_ratio'], 2)} | {_fmt(s['peak_rss_slope'], 2)} | {_fmt(s['peak_rss_ratio'], 2)} |")
    lines += ["", f"peak_rss_mb: {result['peak_rss_mb']}", ""]
    return "\n".join(lines)


def _save(result: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scale.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "scale.md").write_text(markdown(result))


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="1e5,1e6,1e7", help="rows of the largest table (default 1e5,1e6,1e7)")
    ap.add_argument("--columns", default="50,160,500", help="columns at the default size (default 50,160,500)")
    ap.add_argument("--columns-at-rows", type=float, default=DEFAULT_ROWS,
                    help=f"largest-table rows of the columns axis (default {DEFAULT_ROWS}, scale 1)")
    ap.add_argument("--steps", default=",".join(STEPS), help=f"subset of {','.join(STEPS)}")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per step before it is killed")
    ap.add_argument("--max-rss-mb", type=float, default=10_000.0, help="kill a step above this resident set")
    ap.add_argument("--dfs-depth", type=int, default=None, help="DFS max_depth (default: DFSEstimator's)")
    ap.add_argument("--dfs-windows", default=None, help="DFS windows in days, or 'none' (default: DFSEstimator's)")
    ap.add_argument("--dfs-max-features", type=int, default=None,
                    help="DFS feature budget (default: DFSEstimator's; 0 computes every definition)")
    ap.add_argument("--seeds", type=int, default=20_000, help="sampler seeds (default 20000)")
    standard_flags(ap, save_alias=True)  # writes benchmarks/results/scale.{json,md}
    ap.add_argument("--append", action="store_true",
                    help="add this run's records to the saved ones (e.g. another DFS configuration)")
    ap.add_argument("--child", choices=STEPS, help=argparse.SUPPRESS)
    ap.add_argument("--scale", type=float, default=1.0, help=argparse.SUPPRESS)
    ap.add_argument("--n-columns", type=int, default=DEFAULT_COLUMNS, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.dfs_depth is None or args.dfs_windows is None:
        from skrel.estimators.dfs import DEFAULT_WINDOWS, DFSEstimator

        args.dfs_depth = DFSEstimator().max_depth if args.dfs_depth is None else args.dfs_depth
        args.dfs_windows = ",".join(map(str, DEFAULT_WINDOWS)) if args.dfs_windows is None else args.dfs_windows
    if args.dfs_max_features is None:
        from skrel.estimators.dfs import DFSEstimator

        args.dfs_max_features = DFSEstimator().max_features
    text = args.dfs_windows.strip().lower()
    args.dfs_windows = None if text == "none" else [int(float(w)) for w in text.split(",")]
    return args


def main(argv=None):
    args = parse(argv)
    if args.render:
        (RESULTS / "scale.md").write_text(markdown(json.loads((RESULTS / "scale.json").read_text())))
        return
    if args.child:
        print(RESULT + json.dumps(child(args)), flush=True)
        return
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        raise SystemExit(f"unknown step(s) {unknown}; choose from {list(STEPS)}")
    plan = []  # (axis, scale, n_columns)
    for rows in _floats(args.rows):
        plan.append(("rows", rows / DEFAULT_ROWS, DEFAULT_COLUMNS))
    for cols in _floats(args.columns):
        plan.append(("columns", args.columns_at_rows / DEFAULT_ROWS, int(cols)))
    run = {"command": command_line("scale.py", argv), "machine": machine_record(), "dfs_depth": args.dfs_depth, "dfs_windows": args.dfs_windows,
        "seeds": args.seeds, "timeout_s": args.timeout, "max_rss_mb": args.max_rss_mb}
    result = {"benchmark": "scale", "fanouts": [128, 64], "runs": [run], "records": []}
    saved = RESULTS / "scale.json"
    if args.append and saved.exists():
        old = json.loads(saved.read_text())
        result["runs"] = old["runs"] + [run]
        result["records"] = old.get("records", [])
    done: dict[tuple, dict] = {}
    for r in result["records"]:  # --append: what is already measured (ok or not) is not run again
        done.setdefault((r.get("label", r["step"]), round(r["scale"], 6), r["n_columns"]), r)
    have = {(r.get("label", r["step"]), round(r["scale"], 6), r["n_columns"], r.get("axis"))
            for r in result["records"]}
    for axis, scale, n_columns in plan:
        for step in steps:
            key = (step_label(step, args), round(scale, 6), n_columns)
            if key + (axis,) in have:
                continue
            if key in done:  # the default size sits on both axes: run it once
                rec = dict(done[key], axis=axis)
            else:
                rec = run_step(step, scale, n_columns, args)
                rec["axis"] = axis
                done[key] = rec
            result["records"].append(rec)
            if not args.no_save:  # partial results survive an interrupted run
                _save(dict(result, growth=summarise(result["records"], "rows")
                           + summarise(result["records"], "columns"), peak_rss_mb=None))
            print(f"{axis:8s} {rec['label']:12s} rows={_fmt(rec.get('largest_table_rows'))} "
                  f"cols={_fmt(rec.get('columns', n_columns))} {rec['status']:10s} "
                  f"s={_fmt(rec.get('seconds'), 2)} peak_rss_mb={_fmt(rec['peak_rss_mb'])}"
                  + (f" features={rec['features']}" if "features" in rec else ""), flush=True)
    result["growth"] = summarise(result["records"], "rows") + summarise(result["records"], "columns")
    for s in result["growth"]:
        print(f"growth {s['step']:12s} over {s['axis']:7s} {_fmt(s['from'])} -> {_fmt(s['to'])}: seconds slope "
              f"{_fmt(s['seconds_slope'], 2)} (x{_fmt(s['seconds_ratio'], 2)}), peak RSS slope "
              f"{_fmt(s['peak_rss_slope'], 2)} (x{_fmt(s['peak_rss_ratio'], 2)})")
    # The last line: DFS with DFSEstimator's defaults at the default size, whatever --dfs-* say.
    from skrel.estimators.dfs import DEFAULT_WINDOWS, DFSEstimator

    defaults = DFSEstimator()
    dfs_args = argparse.Namespace(**dict(vars(args), dfs_depth=defaults.max_depth, dfs_windows=list(DEFAULT_WINDOWS),
                                         dfs_max_features=defaults.max_features))
    key = (step_label("dfs", dfs_args), 1.0, DEFAULT_COLUMNS)
    if key not in done:
        done[key] = run_step("dfs", 1.0, DEFAULT_COLUMNS, dfs_args)
        done[key]["axis"] = "default"
        result["records"].append(done[key])
    dfs = done[key]
    run["dfs_default"] = {k: dfs.get(k) for k in ("label", "status", "seconds", "peak_rss_mb", "features",
                                                  "train_rows")}
    result["peak_rss_mb"] = dfs["peak_rss_mb"]
    result["growth"] = summarise(result["records"], "rows") + summarise(result["records"], "columns")
    if not args.no_save:
        _save(result)
    print(f"{dfs['label']} at the default wide size: {dfs['status']}, {_fmt(dfs.get('seconds'), 2)} s, "
          f"{dfs.get('features', '-')} features"
          + ("" if dfs["status"] == "ok" else " (killed: the peak below is a lower bound)"))
    print(f"peak_rss_mb: {math.ceil(dfs['peak_rss_mb'])}")


if __name__ == "__main__":
    main()
