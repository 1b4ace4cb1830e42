"""Do loss-landscape metrics predict the val-to-test gap, and does landscape post-selection pick better?

    python benchmarks/landscape.py [--f1-path ../shared/data/f1] [--tasks f1/driver-top3 flights/plane-cancel ...]
                                   [--families rdl relgt] [--grid 7] [--radius 0.5] [--probe-batches 4]
                                   [--hessian-iters 10] [--top-k 3] [--seeds 0 1] [--threads 1] [--render]
                                   [--no-save]

For every task, every configuration of a small grid and every seed of ``--seeds`` (``CONFIGS``: RDL, and RelGT with
``--families rdl relgt``), the model is fitted on the train split (val for early stopping and
best-epoch restore: ``fit(db, task)``), scored on val and test (RelBench protocol: test X over the
database cut at the test timestamp), and measured with :func:`skrel.relatron.landscape.landscape_metrics`
on the val rows. Scores are made greater-is-better (AUROC as is, minus MAE), and

- the Kendall tau between each metric and the gap ``test score - val score`` is reported per task
  (sharper minima generalising worse would give negative taus for p1, p2, hessian_top, barrier and a
  positive one for flatness);
- selection: the configuration validation alone picks (best val score) against the one
  :func:`~skrel.relatron.landscape.landscape_refit` picks (top ``--top-k`` by val, then the
  0.4/0.2/0.2/0.2 vote of val score, -p1, -p2, -barrier), each with its test score, next to the
  test-best configuration (oracle).

Results go to ``benchmarks/results/landscape.json`` (one record per fit, merged by key) and
``benchmarks/results/landscape.md`` with the machine description.
"""

from __future__ import annotations

import argparse
import time

from _common import F1_PATH, ResultStore, command_line, machine, standard_flags

COMMON = {
    "rdl": dict(max_epochs=3, max_steps_per_epoch=30, fanouts=16, encoder_layers=1, random_state=0),
    "relgt": dict(max_epochs=3, max_steps_per_epoch=30, tokens=20, heads=2, centroids=16, random_state=0),
}
CONFIGS = {  # family -> name -> parameters (on top of COMMON[family])
    "rdl": {
        "c16-l1-lr5e-3": dict(channels=16, num_layers=1, lr=5e-3),
        "c16-l2-lr5e-3": dict(channels=16, num_layers=2, lr=5e-3),
        "c32-l2-lr5e-3": dict(channels=32, num_layers=2, lr=5e-3),
        "c32-l2-lr1e-3": dict(channels=32, num_layers=2, lr=1e-3),
        "c16-l2-lr2e-2": dict(channels=16, num_layers=2, lr=2e-2),
        "c32-l2-lr2e-2-d0": dict(channels=32, num_layers=2, lr=2e-2, dropout=0.0),
        "c32-l1-lr2e-2": dict(channels=32, num_layers=1, lr=2e-2),
        "c64-l2-lr5e-3": dict(channels=64, num_layers=2, lr=5e-3),
    },
    "relgt": {
        "c16-lr1e-3": dict(channels=16, lr=1e-3),
        "c32-lr1e-3": dict(channels=32, lr=1e-3),
        "c16-lr1e-2": dict(channels=16, lr=1e-2),
    },
}
TASKS = ["f1/driver-top3", "flights/plane-cancel", "flights/plane-delay"]
SHARP = ("p1", "p2", "hessian_top", "barrier")
METRICS = (*SHARP, "flatness")


def load(dataset: str, f1_path: str):
    if dataset == "f1":
        from skrel.datasets import load_f1

        return load_f1(f1_path)
    if dataset == "flights":
        from skrel.datasets import load_flights

        return load_flights()
    raise ValueError(f"unknown dataset {dataset!r}; use f1 or flights.")


def make(family: str, params: dict):
    if family == "rdl":
        from skrel.estimators.rdl import RDLEstimator

        return RDLEstimator(**params)
    from skrel.estimators.relgt import RelGTEstimator

    return RelGTEstimator(**params)


def run_one(db, task, family: str, name: str, args, seed: int = 0) -> dict:
    from skrel.metrics import METRICS, evaluate
    from skrel.relatron.landscape import landscape_metrics

    params = {**COMMON[family], **CONFIGS[family][name], "random_state": seed}
    est = make(family, params)
    t0 = time.perf_counter()
    est.fit(db, task)
    fit_s = time.perf_counter() - t0
    sign = 1.0 if METRICS[task.metric].greater_is_better else -1.0
    X_val, y_val = task.split(db, "val")
    X_test, y_test = task.split(db, "test")
    val, test = evaluate(est, X_val, y_val, task.metric), evaluate(est, X_test, y_test, task.metric)
    m = landscape_metrics(est, X_val, y_val, grid=args.grid, radius=args.radius, probe_batches=args.probe_batches,
                          hessian_iters=args.hessian_iters, random_state=0)
    return {
        "task": task.name, "family": family, "config": name if seed == 0 else f"{name}/s{seed}", "seed": seed,
        "params": params, "metric": task.metric,
        "val": val, "test": test, "val_score": sign * val, "test_score": sign * test,
        "gap": sign * test - sign * val, **{k: m[k] for k in METRICS}, "loss": m["loss"],
        "hessian_iterations": m["hessian_iterations"], "n_params": m["n_params"], "n_probe_rows": m["n_probe_rows"],
        "fit_seconds": round(fit_s, 2), "landscape_seconds": round(m["seconds"], 2),
        "settings": {"grid": args.grid, "radius": args.radius, "probe_batches": args.probe_batches,
                     "hessian_iters": args.hessian_iters},
    }


def analyse(runs: list[dict], top_k: int) -> dict:
    """Per (task, family): Kendall taus of each metric with the gap, and the three picks."""
    import numpy as np
    from scipy.stats import kendalltau

    from skrel.relatron.landscape import landscape_refit

    out = {}
    groups = sorted({(r["task"], r["family"]) for r in runs})
    for task, family in groups:
        rs = [r for r in runs if r["task"] == task and r["family"] == family]
        gap = np.array([r["gap"] for r in rs])
        taus = {}
        for k in METRICS:
            x = np.array([r[k] for r in rs], dtype=float)
            ok = np.isfinite(x) & np.isfinite(gap)
            if ok.sum() >= 3 and np.ptp(x[ok]) > 0 and np.ptp(gap[ok]) > 0:
                t = kendalltau(x[ok], gap[ok])
                taus[k] = {"tau": round(float(t.statistic), 3), "p": round(float(t.pvalue), 3)}
            else:
                taus[k] = {"tau": None, "p": None}
        cv = {"mean_test_score": np.array([r["val_score"] for r in rs]),
              **{f"mean_test_{k}": -np.array([r[k] for r in rs], dtype=float) for k in ("p1", "p2", "barrier")}}
        picks = {"validation": int(np.argmax(cv["mean_test_score"])),
                 f"landscape top-{top_k}": landscape_refit(top_k=top_k)(cv),
                 "landscape all": landscape_refit(top_k=len(rs))(cv),
                 "oracle (best test)": int(np.argmax([r["test_score"] for r in rs]))}
        pools = _pools(rs, cv, top_k)
        out[f"{task}/{family}"] = {
            "n": len(rs), "metric": rs[0]["metric"], "taus": taus, "pools": pools,
            "picks": {k: {"config": rs[i]["config"], "val": rs[i]["val"], "test": rs[i]["test"]}
                      for k, i in picks.items()},
        }
    return out


def _pools(rs: list[dict], cv: dict, top_k: int, size: int = 8, draws: int = 500) -> dict | None:
    """Selection over random candidate pools: ``draws`` pools of ``size`` fits (seeded), in each the
    validation pick against the landscape top-k pick; their mean test scores and win/tie/loss counts."""
    import numpy as np

    from skrel.relatron.landscape import landscape_refit

    if len(rs) <= size:
        return None
    rng = np.random.default_rng(0)
    test = np.array([r["test_score"] for r in rs])
    refit = landscape_refit(top_k=top_k)
    val_t, land_t = [], []
    for _ in range(draws):
        idx = rng.choice(len(rs), size, replace=False)
        sub = {k: v[idx] for k, v in cv.items()}
        val_t.append(test[idx[int(np.argmax(sub["mean_test_score"]))]])
        land_t.append(test[idx[refit(sub)]])
    val_t, land_t = np.array(val_t), np.array(land_t)
    return {"size": size, "draws": draws, "validation": float(val_t.mean()), "landscape": float(land_t.mean()),
            "wins": int((land_t > val_t).sum()), "ties": int((land_t == val_t).sum()),
            "losses": int((land_t < val_t).sum())}


def render(store: dict) -> str:
    import numpy as np

    runs = list(store["runs"].values())
    analysis = analyse(runs, store.get("top_k", 3))
    s = store.get("settings", {})
    lines = [
        "# Loss-landscape metrics against the val-to-test gap (`benchmarks/landscape.py`)",
        "",
        f"Machine: {store.get('machine', '?')}. Commands (results merged): "
        + "; ".join(f"`{c}`" for c in store.get("commands", [store.get("command", "?")])) + ".",
        f"Landscape settings: grid {s.get('grid')}x{s.get('grid')}, radius {s.get('radius')}, filter-normalised "
        f"directions, {s.get('probe_batches')} probe batches of the val rows, {s.get('hessian_iters')} power "
        "iterations at most, random_state=0. Every fit: train split, val for early stopping (best epoch restored); "
        "test under RelBench's protocol. Scores greater-is-better (AUROC; minus MAE); gap = test score - val score.",
        "",
        "## Every fit",
        "",
        "| task | family | config | metric | val | test | gap | p1 | p2 | hessian_top | barrier | flatness | fit s "
        "| landscape s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(runs, key=lambda r: (r["task"], r["family"], r["config"])):
        lines.append(
            f"| {r['task']} | {r['family']} | {r['config']} | {r['metric']} | {r['val']:.4f} | {r['test']:.4f} "
            f"| {r['gap']:+.4f} | {r['p1']:.4g} | {r['p2']:.4g} | {r['hessian_top']:.4g} | {r['barrier']:.4g} "
            f"| {r['flatness']:.3f} | {r['fit_seconds']:.1f} | {r['landscape_seconds']:.1f} |"
        )
    lines += ["", "## Kendall tau of each metric with the gap (p-value in brackets)", "",
              "Sharper minima generalising worse would make the taus of p1, p2, hessian_top and barrier negative "
              "and flatness's positive.", "",
              "| task / family | n | " + " | ".join(METRICS) + " |", "|---|---|" + "---|" * len(METRICS)]
    for key, a in analysis.items():
        cells = [("-" if a["taus"][k]["tau"] is None else f"{a['taus'][k]['tau']:+.3f} ({a['taus'][k]['p']:.2f})")
                 for k in METRICS]
        lines.append(f"| {key} | {a['n']} | " + " | ".join(cells) + " |")
    lines += ["", "## Selection: test score of the configuration each rule picks", "",
              "| task / family | metric | rule | config | val | test |", "|---|---|---|---|---|---|"]
    for key, a in analysis.items():
        for rule, p in a["picks"].items():
            lines.append(f"| {key} | {a['metric']} | {rule} | {p['config']} | {p['val']:.4f} | {p['test']:.4f} |")
    pooled = [(key, a) for key, a in analysis.items() if a["pools"]]
    if pooled:
        p0 = pooled[0][1]["pools"]
        lines += ["", f"## Selection over random candidate pools ({p0['draws']} pools of {p0['size']} fits each, "
                  "seeded)",
                  "", "Mean test score of the pick (MAE shown as MAE); wins / ties / losses of landscape top-"
                  f"{store.get('top_k', 3)} against validation alone.", "",
                  "| task / family | metric | validation pick | landscape pick | wins | ties | losses |",
                  "|---|---|---|---|---|---|---|"]
        for key, a in pooled:
            p, sgn = a["pools"], (-1 if a["metric"] == "mae" else 1)
            lines.append(f"| {key} | {a['metric']} | {sgn * p['validation']:.4f} | {sgn * p['landscape']:.4f} "
                         f"| {p['wins']} | {p['ties']} | {p['losses']} |")
    verdicts, tally, ratios = [], {"better": 0, "same": 0, "worse": 0}, []
    for key, a in analysis.items():
        v, lt = a["picks"]["validation"]["test"], a["picks"][f"landscape top-{store.get('top_k', 3)}"]["test"]
        better = lt > v if a["metric"] != "mae" else lt < v
        same = lt == v
        tally["same" if same else "better" if better else "worse"] += 1
        ratios.append(lt / v if a["metric"] != "mae" else v / lt)  # > 1: landscape better
        verdicts.append(f"- {key}: landscape top-{store.get('top_k', 3)} "
                        + ("picks the same model as validation." if same else
                           ("picks a better test model" if better else "picks a worse test model")
                           + f" ({a['metric']} {lt:.4f} vs {v:.4f}; ratio {lt / v:.3f})."))
    k = store.get("top_k", 3)
    summary = (f"Landscape top-{k} post-selection against validation alone, over {len(analysis)} task/family "
               f"groups: better test model on {tally['better']}, the same on {tally['same']}, worse on "
               f"{tally['worse']}; geometric mean of the test ratio (landscape / validation, > 1 = landscape "
               f"better; MAE inverted) {float(np.exp(np.mean(np.log(ratios)))):.4f}.") if ratios else ""
    lines += ["", "## Verdict", "", summary, "", *verdicts, "",
              f"n = {len(runs)} fits in all. With a few to a few dozen candidates per task a Kendall tau needs to be "
              "large to be significant (see the p-values): these are indications, not evidence."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--f1-path", default=str(F1_PATH))
    parser.add_argument("--tasks", nargs="+", default=TASKS, help="DATASET/TASK, e.g. f1/driver-top3")
    parser.add_argument("--families", nargs="+", default=["rdl"], choices=sorted(CONFIGS))
    parser.add_argument("--configs", nargs="+", default=None, help="configuration names to run (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0],
                        help="random_state of each fit; every (configuration, seed) is one candidate model")
    parser.add_argument("--grid", type=int, default=7)
    parser.add_argument("--radius", type=float, default=0.5)
    parser.add_argument("--probe-batches", type=int, default=4)
    parser.add_argument("--hessian-iters", type=int, default=10)
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    standard_flags(parser, "landscape")
    args = parser.parse_args(argv)
    store = ResultStore(args.out, save=not args.no_save)
    if args.render:
        store.write_markdown(render)
        return 0

    import torch

    torch.set_num_threads(args.threads)
    store.add_command(command_line("landscape.py", argv))
    store.data.update(machine=machine("torch", torch_threads=True), top_k=args.top_k,
                 settings={"grid": args.grid, "radius": args.radius, "probe_batches": args.probe_batches,
                           "hessian_iters": args.hessian_iters})
    loaded: dict[str, tuple] = {}
    for spec in args.tasks:
        dataset, task_name = spec.split("/", 1)
        if dataset not in loaded:
            loaded[dataset] = load(dataset, args.f1_path)
        db, tasks = loaded[dataset]
        task = tasks[task_name]
        for family in args.families:
            for name, seed in [(n, s) for s in args.seeds for n in CONFIGS[family]]:
                if args.configs and name not in args.configs:
                    continue
                r = run_one(db, task, family, name, args, seed)
                store.runs[f"{task.name}/{family}/{r['config']}"] = r
                print(f"{task.name:14s} {family:5s} {name:18s} val {r['val']:.4f} test {r['test']:.4f} "
                      f"gap {r['gap']:+.4f} p1 {r['p1']:.3g} p2 {r['p2']:.3g} hess {r['hessian_top']:.3g} "
                      f"barrier {r['barrier']:.3g} flat {r['flatness']:.3f} fit {r['fit_seconds']:.1f}s "
                      f"landscape {r['landscape_seconds']:.1f}s", flush=True)
                store.write(render, default=float)  # a killed run keeps its rows
    for key, a in analyse(list(store.runs.values()), args.top_k).items():
        taus = ", ".join(f"{k} {v['tau']}" for k, v in a["taus"].items())
        picks = "; ".join(f"{k}: {p['config']} test {p['test']:.4f}" for k, p in a["picks"].items())
        v, lt = a["picks"]["validation"]["test"], a["picks"][f"landscape top-{args.top_k}"]["test"]
        print(f"{key}: tau with gap: {taus}\n  {picks}\n  landscape/validation test ratio {lt / v:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
