"""RelGT ablation on rel-f1: the full model against each token element removed and against the
global module removed, like the paper's ablation table.

    python benchmarks/relgt_ablation.py [--path ../shared/data/f1] [--tasks driver-dnf ...]
                                        [--seeds 0 1] [--set KEY=VALUE ...] [--json] [--render] [--no-save]

Every (variant, task, seed) is one fit with the CPU defaults (plus ``--set``) on the train split,
val for early stopping, scored on test under RelBench's protocol (X over the database cut at the
test timestamp). The full model is the anchor: each variant's cell is the change of the test
score against it, in percent, positive = better (higher AUROC, lower MAE), as in the paper.
Results go to ``benchmarks/results/relgt_ablation.json`` and ``.md`` with the machine description.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from _common import F1_PATH, ResultStore, command_line, machine, machines_line, standard_flags

TASKS = ["driver-dnf", "driver-top3", "driver-position"]
VARIANTS = {
    "full": (),
    "w/o features": ("features",),
    "w/o node type": ("type",),
    "w/o hop": ("hop",),
    "w/o relative time": ("time",),
    "w/o structure (GNN PE)": ("structure",),
    "w/o global module": ("global",),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", default=str(F1_PATH))
    parser.add_argument("--tasks", nargs="+", default=TASKS)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--set", action="extend", nargs="+", default=[], metavar="KEY=VALUE")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the machine is shared)")
    parser.add_argument("--json", action="store_true")
    standard_flags(parser, "relgt_ablation")
    args = parser.parse_args(argv)
    store = ResultStore(args.out, save=not args.no_save, sort_keys=True)
    if args.render:
        store.write_markdown(render)
        return 0

    import torch

    from skrel.datasets import load_f1
    from skrel.evaluation import fit_and_report, parse_params

    torch.set_num_threads(args.threads)
    common = parse_params(args.set)
    db, tasks = load_f1(args.path)
    here = machine("torch", torch_threads=True)
    store.stamp(here)
    for task_name in args.tasks:
        for variant in args.variants:
            for seed in args.seeds:
                params = {**common, "ablate": list(VARIANTS[variant]), "random_state": seed}
                t0 = time.perf_counter()
                r = fit_and_report("f1", db, tasks[task_name], "relgt", params)
                r["variant"], r["seed"] = variant, seed
                r["machine"] = here
                store.runs[f"{variant}/{task_name}/{seed}"] = r
                print(f"{variant:24s} {task_name:16s} seed {seed}: test={r['test']:.4f} val={r['val']:.4f} "
                      f"({time.perf_counter() - t0:.0f}s)", file=sys.stderr, flush=True)
                store.write()  # a killed run keeps its rows
    store.data["machine"] = here
    store.data["settings"] = common
    store.add_command(command_line("relgt_ablation.py", argv))
    store.write(render)
    print(json.dumps(store.runs) if args.json else render(store.data))
    return 0


def _mean(runs, variant, task, key="test", seeds=None):
    """Mean of ``key`` over the variant's runs on ``task`` (only ``seeds`` when given), and their seeds."""
    picked = [r for r in runs.values() if r["variant"] == variant and r["task"] == task
              and (seeds is None or r["seed"] in seeds)]
    return (sum(r[key] for r in picked) / len(picked), {r["seed"] for r in picked}) if picked else (None, set())


def render(store: dict) -> str:
    runs = store["runs"]
    variants = [v for v in VARIANTS if any(r["variant"] == v for r in runs.values())]
    tasks = [t for t in TASKS if any(r["task"] == t for r in runs.values())]
    metric = {r["task"]: r["metric"] for r in runs.values()}
    fmt = {t: (lambda x: f"{100 * x:.2f}") if metric[t] == "roc_auc" else (lambda x: f"{x:.3f}") for t in tasks}
    lines = [
        "# RelGT ablation on rel-f1 (RelBench protocol: X over the database cut at the test timestamp)",
        "",
        f"{machines_line(store)}. Settings: {json.dumps(store.get('settings', {}))} on top of the",
        "CPU defaults. Test score (AUROC x100, MAE), mean over seeds, and in brackets its change against the",
        "full model over the same seeds in percent, positive = better (the paper's convention).",
        "",
        "| variant | " + " | ".join(tasks) + " |",
        "|---|" + "---|" * len(tasks),
    ]
    for v in variants:
        cells = []
        for t in tasks:
            mean, seeds = _mean(runs, v, t)
            full, full_seeds = _mean(runs, "full", t, seeds=seeds)  # the same seeds on both sides
            if mean is None:
                cells.append("")
                continue
            cell = f"{fmt[t](mean)} (n={len(seeds)})"
            if v != "full" and full and full_seeds == seeds:
                change = (mean - full) / full if metric[t] == "roc_auc" else (full - mean) / full
                cell += f" [{100 * change:+.2f}%]"
            cells.append(cell)
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    lines += ["", "| variant | task | seed | val | test | fit seconds | peak RSS MB |", "|---|---|---|---|---|---|---|"]
    for key in sorted(runs):
        r = runs[key]
        lines.append(f"| {r['variant']} | {r['task']} | {r['seed']} | {fmt[r['task']](r['val'])} | "
                     f"{fmt[r['task']](r['test'])} | {r['fit_seconds']:.0f} | {r['peak_rss_mb']:.0f} |")
    commands = store.get("commands", [store.get("command", "python benchmarks/relgt_ablation.py")])
    lines += ["", "Reproduce (the cells come from these runs): " + ", ".join(f"`{c}`" for c in commands), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
