"""rel-f1 test scores of each family next to the published table, against the baseline anchor.

    python benchmarks/f1.py [--path ../shared/data/f1] [--models baseline dfs rdl relgt]
                            [--tasks driver-dnf ...] [--set model.KEY=VALUE ...] [--seeds 0 1 2]
                            [--threads 1] [--json] [--render] [--no-save]

Every (model, task) is fitted once per seed of ``--seeds`` (default: ``random_state=0`` only; seed 0
fills the main table, more seeds add a mean row) on the train split (val for early stopping) and
scored on test under RelBench's protocol (X over the database cut at the test timestamp: the
published numbers' protocol) and as-of (X over the full database: not comparable
to the published table). The baseline (LightGBM on the drivers table's own columns) is always run
as the anchor, and each row prints its ratio to it. Results merge into
``benchmarks/results/f1.json`` and ``benchmarks/results/f1.md`` with the machine description.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from _common import F1_PATH, ResultStore, command_line, machine, machines_line, standard_flags
from skrel.estimators.registry import family_names  # noqa: E402  (after _common: this checkout's skrel)

PUBLISHED = {  # AUROC x100, MAE; ../shared/notes/rel-f1.md
    "RelBench RDL (GraphSAGE)": {"driver-dnf": 72.62, "driver-top3": 75.54, "driver-position": 4.022},
    "RelGT (paper)": {"driver-dnf": 75.87, "driver-top3": 83.52, "driver-position": 3.92},
    "RelGNN": {"driver-dnf": 75.29, "driver-top3": 85.69, "driver-position": 3.798},
    "Relatron, best RDL": {"driver-dnf": 77.20, "driver-top3": 85.94, "driver-position": 3.803},
    "Relatron, best DFS": {"driver-dnf": 79.42, "driver-top3": 85.71, "driver-position": 3.273},
}
TASKS = ["driver-dnf", "driver-top3", "driver-position"]


def scale(metric: str, value: float) -> float:
    return round(100 * value, 2) if metric == "roc_auc" else round(value, 3)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", default=str(F1_PATH))
    parser.add_argument("--models", nargs="+", default=family_names(), choices=family_names())
    parser.add_argument("--tasks", nargs="+", default=TASKS)
    parser.add_argument("--set", action="extend", nargs="+", default=[], metavar="MODEL.KEY=VALUE")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0],
                        help="random_state of each fit (seed 0 fills the main table; more seeds add a mean row)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the machine is shared)")
    parser.add_argument("--json", action="store_true")
    standard_flags(parser, "f1")
    args = parser.parse_args(argv)
    store = ResultStore(args.out, save=not args.no_save, sort_keys=True)
    if args.render:
        store.write_markdown(render)
        return 0

    import torch

    from skrel.datasets import load_f1
    from skrel.evaluation import fit_and_report, parse_params

    torch.set_num_threads(args.threads)
    overrides: dict[str, dict] = {}
    for model_key, value in parse_params(args.set).items():
        model, key = model_key.split(".", 1)
        overrides.setdefault(model, {})[key] = value
    models = ["baseline"] + [m for m in args.models if m != "baseline"]

    t0 = time.perf_counter()
    db, tasks = load_f1(args.path)
    print(f"loaded rel-f1 in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    here = machine("torch", torch_threads=True)
    store.stamp(here)
    anchor: dict[str, dict] = {}
    rows = []
    for task_name in args.tasks:
        task = tasks[task_name]
        for seed in args.seeds:
            for model in models:
                params = {"random_state": seed, **overrides.get(model, {})}
                print(f"fitting {model} on {task_name}, seed {seed} ...", file=sys.stderr, flush=True)
                r = fit_and_report("f1", db, task, model, params)
                r["seed"] = seed
                r["machine"] = here
                if model == "baseline":
                    anchor[task_name] = r
                base = anchor[task_name]
                better = 1 if task.metric == "roc_auc" else -1
                r["ratio_to_baseline"] = round((r["test"] / base["test"]) ** better, 4)
                r["time_ratio_to_baseline"] = round(r["fit_seconds"] / max(base["fit_seconds"], 1e-9), 2)
                rows.append(r)
                store.runs[f"{model}/{task_name}" + (f"/{seed}" if seed else "")] = r
                store.write()  # a killed run keeps its rows
                print(
                    f"{model:9s} {task_name:16s} seed {seed} test={scale(task.metric, r['test']):>7} "
                    f"as-of={scale(task.metric, r['test_asof']):>7} val={scale(task.metric, r['val']):>7} "
                    f"x{r['ratio_to_baseline']:.3f} of baseline, fit {r['fit_seconds']:.0f}s "
                    f"({r['time_ratio_to_baseline']:.1f}x baseline), peak RSS {r['peak_rss_mb']:.0f} MB",
                    flush=True,
                )
    store.data["machine"] = here
    store.add_command(command_line("f1.py", argv))
    store.write(render)
    if args.json:
        print(json.dumps(rows))
    else:
        print(render(store.data))
    return 0


def render(store: dict) -> str:
    """The markdown table of ``store`` (also ``python benchmarks/f1.py --render`` for a stored JSON)."""
    lines = [
        "# rel-f1 test scores (AUROC x100, MAE)",
        "",
        f"{machines_line(store)}. Each skrel row: one fit, random_state=0. 'RelBench protocol' = X over",
        "the database cut at the test timestamp (the published numbers' protocol); 'as-of' = X over the full",
        "database (each row sees everything up to its own cutoff; not comparable to the published table).",
        "",
        "| method | protocol | driver-dnf | driver-top3 | driver-position |",
        "|---|---|---|---|---|",
    ]
    for name, scores in PUBLISHED.items():
        lines.append(f"| {name} | published | " + " | ".join(str(scores[t]) for t in TASKS) + " |")
    runs = store.get("runs", {})
    order = ["baseline"] + [m for m in family_names() if m != "baseline"]
    models = sorted({k.split("/")[0] for k in runs}, key=lambda m: order.index(m) if m in order else len(order))
    for model in models:
        for label, key in (("RelBench protocol", "test"), ("as-of", "test_asof")):
            cells = []
            for t in TASKS:
                r = runs.get(f"{model}/{t}")
                cells.append("" if r is None else str(scale(r["metric"], r[key])))
            lines.append(f"| skrel {model} | {label} | " + " | ".join(cells) + " |")
    by_model: dict[str, dict[str, list]] = {}
    for r in runs.values():
        by_model.setdefault(r["model"], {}).setdefault(r["task"], []).append(r)
    multi = {m: v for m, v in by_model.items() if any(len(rs) > 1 for rs in v.values())}
    if multi:
        lines += ["", "Mean and standard deviation over seeds (RelBench protocol; n = seeds):", "",
                  "| method | driver-dnf | driver-top3 | driver-position |", "|---|---|---|---|"]
        for model, per_task in sorted(multi.items()):
            cells = []
            for t in TASKS:
                rs = per_task.get(t, [])
                vals = [scale(r["metric"], r["test"]) for r in rs]
                if not vals:
                    cells.append("")
                    continue
                mean = sum(vals) / len(vals)
                std = (sum((v - mean) ** 2 for v in vals) / max(len(vals) - 1, 1)) ** 0.5
                cells.append(f"{mean:.3f} ± {std:.3f} (n={len(vals)})" if rs[0]["metric"] != "roc_auc"
                             else f"{mean:.2f} ± {std:.2f} (n={len(vals)})")
            lines.append(f"| skrel {model} | " + " | ".join(cells) + " |")
    lines += ["", "| model | task | seed | fit seconds | epochs | seconds per epoch | peak RSS MB | test / baseline |",
              "|---|---|---|---|---|---|---|---|"]
    for key, r in sorted(runs.items()):
        lines.append(f"| {r['model']} | {r['task']} | {r.get('seed', r.get('params', {}).get('random_state', 0))} | "
                     f"{r['fit_seconds']:.0f} | {r.get('epochs', '')} | {r.get('seconds_per_epoch', '')} | "
                     f"{r['peak_rss_mb']:.0f} | {r.get('ratio_to_baseline', '')} |")
    lines += ["", "Peak RSS is the process's high-water mark so far (runs are sequential in one process)."]
    lines.append("")
    commands = store.get("commands", [store.get("command", "python benchmarks/f1.py")])
    lines.append("Reproduce (the rows come from these runs): " + ", ".join(f"`{c}`" for c in commands))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
