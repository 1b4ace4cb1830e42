"""Temporal neighbour sampling: our vectorised sampler against the brute-force reference.

Both sample the same seeds (entity, cutoff) with the same fan-outs ([128, 64] by default) and the
same rules (``skrel.graph.sampler``): ours in batches of 512 seeds (the estimator's batch size),
the reference one seed at a time, walking its tree in Python over prebuilt adjacency lists.
Graphs: rel-f1 (driver-dnf training seeds) and a synthetic database with over 10^6 foreign-key edges (``make_synthetic(n_rows=500_000)``). Graph building is not timed.

Prints seeds per second for each sampler and graph, and as the last line ``speedup: X``, the
smallest ratio over the graphs. ``--json`` prints one JSON object instead (the same last line
follows). Results: ``benchmarks/results/sampler.json`` / ``.txt`` (not with ``--no-save``).

Usage: python benchmarks/sampler.py [--json] [--no-save] [--f1 PATH] [--ref-seeds N] [--strategy uniform|last]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from _common import F1_PATH, RESULTS, machine_record, standard_flags

from skrel.graph import build_graph  # noqa: E402  (after _common: this checkout's skrel)
from skrel.graph.sampler import ReferenceSampler, TemporalSampler, seed_salts  # noqa: E402


def graphs(f1_path: Path | None):
    out = []
    if f1_path is not None and (f1_path / "results.csv").exists():
        from skrel.datasets import load_f1

        db, tasks = load_f1(f1_path)
        task = tasks["driver-dnf"]
        X, _ = task.split(db, "train")
        g = build_graph(X.db)
        out.append(("rel-f1 (driver-dnf train seeds)", g, "drivers", g.node_index("drivers", X.entity_ids),
                    X.cutoffs.view(np.int64)))
    from skrel.datasets.synthetic import make_synthetic

    db, tasks = make_synthetic(n_entities=5000, n_rows=500_000, random_state=0)
    X, _ = tasks["synthetic"].split(db, "train")
    g = build_graph(X.db)
    out.append((f"synthetic ({sum(len(c) for _, c in g.adj.values()) // 2:,} fk edges)", g, "entities",
                g.node_index("entities", X.entity_ids), X.cutoffs.view(np.int64)))
    return out


def run(args) -> dict:
    fanouts = [int(k) for k in args.fanouts.split(",")]
    rows = []
    for name, g, seed_type, nodes, times in graphs(args.f1):
        rng = np.random.default_rng(0)
        pick = rng.choice(len(nodes), size=min(args.ref_seeds, len(nodes)), replace=False)
        n, t = nodes[pick], times[pick]
        ours = TemporalSampler(g, fanouts, args.strategy)
        ours.sample(seed_type, n[:2], t[:2], seed_salts(0, np.arange(2)))  # builds the visibility index
        reps, t0 = 0, time.perf_counter()
        while True:  # batches of the training batch size, as RDLEstimator samples
            for i in range(0, len(n), args.batch_size):
                sl = slice(i, i + args.batch_size)
                sub = ours.sample(seed_type, n[sl], t[sl], seed_salts(reps, np.arange(len(n))[sl]))
            reps += 1
            if time.perf_counter() - t0 > 1.0:
                break
        ours_rate = reps * len(n) / (time.perf_counter() - t0)
        sub = ours.sample(seed_type, n, t, seed_salts(0, np.arange(len(n))))
        ref = ReferenceSampler(g)
        t0 = time.perf_counter()
        paths = ref.sample(seed_type, n, t, fanouts, args.strategy, np.random.default_rng(0))
        ref_rate = len(n) / (time.perf_counter() - t0)
        assert sum(len(p) for p in paths) > 0 and sub.total_nodes() > len(n)
        big = min(len(nodes), 20_000)
        t0 = time.perf_counter()
        ours.sample(seed_type, nodes[:big], times[:big], seed_salts(0, np.arange(big)))
        big_rate = big / (time.perf_counter() - t0)
        rows.append({"graph": name, "seeds": int(len(n)), "nodes_per_seed": round(sub.total_nodes() / len(n), 1),
                     "ours_seeds_per_s": round(ours_rate, 1), "reference_seeds_per_s": round(ref_rate, 2),
                     "ours_seeds_per_s_large_batch": round(big_rate, 1), "large_batch": int(big),
                     "speedup": round(ours_rate / ref_rate, 1)})
    return {"benchmark": "temporal neighbour sampler", "fanouts": fanouts, "strategy": args.strategy,
            "batch_size": args.batch_size,
            "threads": "numpy (single-threaded)", "machine": machine_record(), "graphs": rows,
            "speedup": min(r["speedup"] for r in rows)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    standard_flags(ap, render=False, save_alias=True)  # writes benchmarks/results/sampler.{json,txt}
    ap.add_argument("--f1", type=Path, default=F1_PATH)
    ap.add_argument("--ref-seeds", type=int, default=2048, help="seeds sampled by both (default 2048)")
    ap.add_argument("--batch-size", type=int, default=512, help="our batch size (RDLEstimator's default)")
    ap.add_argument("--fanouts", default="128,64")
    ap.add_argument("--strategy", default="uniform", choices=["uniform", "last"])
    args = ap.parse_args(argv)
    result = run(args)
    lines = [f"machine: {result['machine']['cpu']}, {result['machine']['cores']} cores, "
             f"load average {result['machine']['load_average_at_start'][0]:.1f}"]
    for r in result["graphs"]:
        lines.append(f"{r['graph']}: {r['seeds']} seeds, {r['nodes_per_seed']} nodes/seed; ours "
                     f"{r['ours_seeds_per_s']:,.0f} seeds/s (large batch of {r['large_batch']}: "
                     f"{r['ours_seeds_per_s_large_batch']:,.0f}), reference {r['reference_seeds_per_s']:,.1f} "
                     f"seeds/s: {r['speedup']:,.1f}x")
    text = "\n".join(lines) + f"\nspeedup: {result['speedup']:.1f}"
    if not args.no_save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "sampler.json").write_text(json.dumps(result, indent=2) + "\n")
        (RESULTS / "sampler.txt").write_text(text + "\n")
    if args.json:
        print(json.dumps(result))
        print(f"speedup: {result['speedup']:.1f}")
    else:
        print(text)


if __name__ == "__main__":
    main()
