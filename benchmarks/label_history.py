"""rel-f1 with and without the entity's own label history (``label_history=True``), both protocols.

    python benchmarks/label_history.py [--path ../shared/data/f1] [--models dfs baseline]
                                       [--tasks driver-dnf ...] [--seed 0] [--json] [--render] [--no-save]

Each (model, task, label_history) is fitted once (``random_state=--seed``, otherwise the family's
defaults) with ``skrel.evaluation.fit_and_report`` and scored on val, on test under RelBench's
protocol (X over the database cut at the test timestamp) and as-of (X over the full database).
The label history is computed on each split's own database, so under RelBench's protocol the
test rows see only labels whose windows closed before the test timestamp. Results go to
``benchmarks/results/label_history.json`` and ``.md`` with the machine description.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
from _common import F1_PATH, ResultStore, command_line, machine, standard_flags

TASKS = ["driver-dnf", "driver-top3", "driver-position"]


def scale(metric: str, value: float) -> str:
    return f"{100 * value:.2f}" if metric == "roc_auc" else f"{value:.3f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", default=str(F1_PATH))
    parser.add_argument("--models", nargs="+", default=["dfs", "baseline"], choices=["dfs", "baseline"])
    parser.add_argument("--tasks", nargs="+", default=TASKS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    standard_flags(parser, "label_history")
    args = parser.parse_args(argv)
    store = ResultStore(args.out, save=not args.no_save, sort_keys=True)
    if args.render:
        store.write_markdown(render)
        return 0

    from skrel.datasets import load_f1
    from skrel.evaluation import fit_and_report

    db, tasks = load_f1(args.path)
    here = machine()
    for model in args.models:
        for name in args.tasks:
            for history in (False, True):
                r = fit_and_report("f1", db, tasks[name], model, {"label_history": history, "random_state": args.seed})
                r.update(label_history=history, seed=args.seed, machine=here)
                store.runs[f"{model}/{name}/{history}/{args.seed}"] = r
                print(f"{model:8s} {name:16s} history={history!s:5s} val={r['val']:.4f} test={r['test']:.4f} "
                      f"asof={r['test_asof']:.4f} fit={r['fit_seconds']:.1f}s", file=sys.stderr, flush=True)
                store.write(default=str)  # a killed run keeps its rows
    store.add_command(command_line("label_history.py", argv))
    store.write(render, default=str)
    print(json.dumps(store.runs, default=str) if args.json else render(store.data))
    return 0


def render(store: dict) -> str:
    runs = store["runs"]
    machines = sorted({r.get("machine", "?") for r in runs.values()})
    seeds = sorted({r["seed"] for r in runs.values()})
    lines = [
        "# rel-f1 with and without the entity's own label history",
        "",
        f"Machine: {'; '.join(machines)}. One fit per row, random_state={seeds[0]} (the mean over seeds follows when "
        "there are more), the family's defaults otherwise. AUROC x100 (driver-dnf, driver-top3) and MAE "
        "(driver-position). 'RelBench protocol' = X over the database cut at the test timestamp (the published numbers' protocol); 'as-of' = X over the full "
        "database. The label history (`label_history=True`, `skrel.features.label_history`) is computed with the "
        "task's label query on the rows' own database: under RelBench's protocol test rows see only labels whose "
        "windows closed by the test timestamp.",
        "",
        "| model | label history | protocol | driver-dnf | driver-top3 | driver-position |",
        "|---|---|---|---|---|---|",
    ]
    models = [m for m in ("dfs", "baseline") if any(r["model"] == m for r in runs.values())]
    for model in models:
        for history in (False, True):
            for split, protocol in (("val", "val"), ("test", "RelBench protocol"), ("test_asof", "as-of")):
                cells = []
                for task in TASKS:
                    hits = [r for r in runs.values() if r["model"] == model and r["task"] == task
                            and r["label_history"] == history and r["seed"] == seeds[0]]
                    cells.append(scale(hits[0]["metric"], hits[0][split]) if hits else "")
                lines.append(f"| {model} | {'yes' if history else 'no'} | {protocol} | " + " | ".join(cells) + " |")
    if len(seeds) > 1:
        lines += ["", "Mean ± standard deviation over the seeds (n = seeds):", "",
                  "| model | label history | protocol | driver-dnf | driver-top3 | driver-position |",
                  "|---|---|---|---|---|---|"]
        for model in models:
            for history in (False, True):
                for split, protocol in (("val", "val"), ("test", "RelBench protocol"), ("test_asof", "as-of")):
                    cells = []
                    for task in TASKS:
                        hits = [r for r in runs.values() if r["model"] == model and r["task"] == task
                                and r["label_history"] == history]
                        if len(hits) < 2:
                            cells.append("")
                            continue
                        k = 100 if hits[0]["metric"] == "roc_auc" else 1
                        v = np.array([k * r[split] for r in hits])
                        digits = 2 if k == 100 else 3
                        cells.append(f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f} (n={len(v)})")
                    if any(cells):
                        lines.append(f"| {model} | {'yes' if history else 'no'} | {protocol} | "
                                     + " | ".join(cells) + " |")
    lines += ["", "Fit seconds include the features; the machine was shared with another benchmark, so they are "
              "noisy. Compare 'no' and 'yes' rows measured on one machine: `benchmarks/results/f1.md`'s DFS rows "
              "come from another processor and differ from the 'no' rows here by up to 1 AUROC point.", "",
              "| model | task | label history | seed | fit seconds | peak RSS MB |", "|---|---|---|---|---|---|"]
    for _, r in sorted(runs.items()):
        lines.append(f"| {r['model']} | {r['task']} | {'yes' if r['label_history'] else 'no'} | {r['seed']} | "
                     f"{r['fit_seconds']:.1f} | {r['peak_rss_mb']:.0f} |")
    commands = store.get("commands") or [store.get("command", "python benchmarks/label_history.py")]
    lines += ["", "Reproduce (with `PYTHONPATH=.`):", ""] + [f"    {c}" for c in commands]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
