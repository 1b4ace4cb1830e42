"""RelatronSelector on rel-f1, both protocols, against the best single family chosen on validation.

    python benchmarks/relatron_f1.py [--path ../shared/data/f1] [--tasks driver-top3 ...] [--budget 8]
                                     [--full-bank] [--render] [--no-save]

Each task runs in its own process through the command line (``skrel fit f1 TASK --model relatron``),
so peak RSS is per task. The selector's bank is the shipped one *without the rel-f1 tasks*
(leave-one-database-out: the meta-classifier never sees the task it chooses for); ``--full-bank``
uses the whole bank. The anchor, from the same bank: per family, the configuration with the best
validation score; then the family whose configuration has the best validation score (the "best
single family chosen on validation"). Both are scored under RelBench's protocol (``test``) and
as-of (``test_asof``); ratios selector / anchor are printed. Results:
``benchmarks/results/relatron_f1.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import F1_PATH, ROOT, machine, standard_flags

TASKS = ["driver-dnf", "driver-top3", "driver-position"]


def anchor(bank, task: str) -> dict:
    from skrel.metrics import METRICS

    frame = bank.to_frame()
    rows = frame[frame["task_id"] == f"f1/{task}"]
    sign = 1.0 if METRICS[rows["metric"].iloc[0]].greater_is_better else -1.0
    best = rows.assign(_v=sign * rows["val"]).sort_values("_v", ascending=False).groupby("family").head(1)
    top = best.iloc[0]
    return {"family": top["family"], "val": float(top["val"]), "test": float(top["test"]),
            "test_asof": float(top["test_asof"]), "fits": int(len(rows))}


def main(argv=None) -> int:
    from skrel.relatron.bank import PerformanceBank

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", default=str(F1_PATH))
    parser.add_argument("--tasks", nargs="+", default=TASKS)
    parser.add_argument("--budget", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--full-bank", action="store_true")
    parser.add_argument("--set", nargs="*", default=[], help="more RelatronSelector parameters, KEY=VALUE")
    standard_flags(parser, "relatron_f1", render=False)
    parser.add_argument("--render", action="store_true",
                        help="only recompute the anchors from the current bank and rewrite the .md")
    args = parser.parse_args(argv)
    bank = PerformanceBank.load()
    if args.render:
        store = json.loads(Path(args.out).read_text())
        for key, r in store.items():
            task = key.split("/")[0]
            r["anchor"] = anchor(bank, task) if (bank.to_frame()["task_id"] == f"f1/{task}").any() else None
        Path(args.out).write_text(json.dumps(store, indent=1))
        render(store, Path(args.out).with_suffix(".md"))
        return 0
    frame = bank.to_frame()
    used = frame if args.full_bank else frame[frame["group"] != "f1"]
    tmp = Path(tempfile.mkdtemp()) / "bank.parquet"
    PerformanceBank(used).save(tmp)
    store = json.loads(Path(args.out).read_text()) if Path(args.out).exists() else {}
    for task in args.tasks:
        cmd = [sys.executable, "-m", "skrel.cli", "fit", "f1", task, "--path", args.path, "--model", "relatron",
               "--set", f"bank={tmp}", f"budget={args.budget}", f"random_state={args.seed}", "n_jobs=1", *args.set,
               "--json"]
        print(" ".join(cmd[2:]), flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if proc.returncode:
            print(proc.stderr[-2000:])
            return proc.returncode
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        result["anchor"] = anchor(bank, task) if (frame["task_id"] == f"f1/{task}").any() else None
        result["bank"] = "full" if args.full_bank else "without rel-f1"
        result["machine"] = machine()
        store[f"{task}/seed{args.seed}/{result['bank']}"] = result
        a = result["anchor"]
        line = (f"{task}: relatron chose {result['selected_family']} ({result['macro_reason']}); "
                f"test {result['test']:.4f}, as-of {result['test_asof']:.4f}, {result['fit_seconds']:.0f}s, "
                f"{result['peak_rss_mb']:.0f} MB")
        if a:
            line += (f" | anchor {a['family']} test {a['test']:.4f} (x{result['test'] / a['test']:.3f}), "
                     f"as-of {a['test_asof']:.4f} (x{result['test_asof'] / a['test_asof']:.3f})")
        print(line, flush=True)
        if not args.no_save:
            Path(args.out).write_text(json.dumps(store, indent=1))
    if not args.no_save:
        render(store, Path(args.out).with_suffix(".md"))
    return 0


def render(store: dict, path: Path) -> None:
    lines = ["# RelatronSelector on rel-f1", "",
             "`python benchmarks/relatron_f1.py`: `skrel fit f1 TASK --model relatron` with the shipped bank without "
             "rel-f1's tasks (leave-one-database-out), against the best single family chosen on validation among "
             "the bank's rel-f1 fits (same budget). AUROC as a fraction; MAE for driver-position. "
             "RelBench protocol = `test`, as-of = `test_asof`.", "",
             "| task | seed | bank | chosen | reason | fits | test | as-of | anchor (family) | anchor test | anchor as-of "
             "| seconds | peak MB | machine |", "|" + "---|" * 14]
    for key, r in sorted(store.items()):
        task, seed, _ = key.split("/", 2)
        a = r.get("anchor") or {}
        lines.append(f"| {task} | {seed[4:]} | {r['bank']} | {r['selected_family']} | {r['macro_reason']} | {r['fits']} "
                     f"| {r['test']:.4f} | {r['test_asof']:.4f} | {a.get('family', '')} | {a.get('test', float('nan')):.4f} "
                     f"| {a.get('test_asof', float('nan')):.4f} | {r['fit_seconds']:.0f} | {r['peak_rss_mb']:.0f} "
                     f"| {r.get('machine', '')} |")
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
