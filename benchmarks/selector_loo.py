"""Leave-one-out over the performance bank: does the meta-classifier pick the family that wins on test?

    python benchmarks/selector_loo.py [--bank skrel/relatron/bank.parquet] [--protocol test] [--no-save]

For each leave-one-out group (every task of one database; every synthetic variant of one generator
seed) the meta-classifier of :class:`skrel.relatron.RelatronSelector` (same features, same model:
:func:`skrel.relatron.selector.meta_proba`) is trained on the other groups' tasks and predicts the
family of each held-out task. A task's true label is the family whose validation-chosen
configuration scored best on test (budget-aware: the bank's configurations). Compared with:
always-DFS, always-RDL, a homophily threshold (RDL when ``homophily.adjusted.max`` is below a
threshold fitted on the training tasks, else DFS) and validation-only choice (the family whose
best configuration has the best validation score). Regret: the test score lost against the best
family, in the metric's own units (AUROC points, MAE). Anchor: validation-only choice, computed
in the same run; ratios printed. Last line: ``loo_accuracy: X`` (all tasks, all families).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from _common import standard_flags


def _signed(scores: pd.DataFrame, metric: pd.Series) -> pd.DataFrame:
    from skrel.metrics import METRICS

    sign = metric.reindex(scores.index).map(lambda m: 1.0 if METRICS[m].greater_is_better else -1.0)
    return scores.mul(sign, axis=0)


def evaluate(bank, families, protocol: str = "test", meta_model=None) -> tuple[pd.DataFrame, dict]:
    from skrel.relatron.bank import EMB_PREFIX
    from skrel.relatron.selector import meta_features, meta_proba

    tasks = bank.tasks().set_index("task_id")
    frame = bank.to_frame()
    metric = frame.groupby("task_id")["metric"].first()
    test = _signed(bank.family_scores(protocol=protocol)[families], metric)
    val = _signed(bank.family_scores(protocol="val")[families], metric)
    truth = test.idxmax(axis=1)
    cols = [c for c in meta_features(bank.embedding_columns) if tasks[c].notna().mean() >= 0.8]
    hcol = f"{EMB_PREFIX}homophily.adjusted.max"
    rows = []
    for g in sorted(tasks["group"].unique()):
        held = tasks.index[tasks["group"] == g]
        rest = tasks.drop(index=held).reset_index()
        labels = truth.drop(index=held)
        # homophily threshold fitted on the rest: RDL below it, DFS above
        h_rest = tasks.loc[labels.index, hcol]
        best_t, best_acc = 0.0, -1.0
        for t in np.r_[-np.inf, np.sort(h_rest.dropna().unique())]:
            guess = np.where(h_rest < t, "rdl", "dfs")
            acc = float((guess == labels.to_numpy()).mean())
            if acc > best_acc:
                best_t, best_acc = t, acc
        for tid in held:
            vec = tasks.loc[[tid], cols].to_numpy(dtype=float)
            proba, _ = meta_proba(rest, labels, cols, vec, tasks.loc[tid, "task_type"], meta_model, random_state=0)
            meta = max(families, key=lambda f: (proba.get(f, 0.0), -families.index(f)))
            rows.append({
                "task_id": tid, "group": g, "source": tasks.loc[tid, "source"], "truth": truth[tid],
                "meta": meta, "always_dfs": "dfs", "always_rdl": "rdl",
                "homophily": "rdl" if tasks.loc[tid, hcol] < best_t else "dfs",
                "validation": val.loc[tid].idxmax(),
                "adjusted_homophily": tasks.loc[tid, hcol],
                "rdl_minus_dfs": test.loc[tid, "rdl"] - test.loc[tid, "dfs"] if {"rdl", "dfs"} <= set(families) else np.nan,
            })
    out = pd.DataFrame(rows).set_index("task_id")
    methods = ["meta", "always_dfs", "always_rdl", "homophily", "validation"]
    summary = {}
    for subset, mask in (("all", slice(None)), ("real", out["source"] == "real"),
                         ("synthetic", out["source"] == "synthetic")):
        part = out.loc[mask]
        if not len(part):
            continue
        best = test.loc[part.index].max(axis=1)
        summary[subset] = {"tasks": len(part)}
        for m in methods:
            chosen = np.array([test.loc[t, f] for t, f in part[m].items()])
            summary[subset][m] = {"accuracy": float((part[m] == part["truth"]).mean()),
                                  "regret": float(np.nanmean(best.to_numpy() - chosen))}
    syn = out[out["source"] == "synthetic"].dropna(subset=["adjusted_homophily", "rdl_minus_dfs"])
    if len(syn) > 2:
        from scipy.stats import spearmanr

        rho, p = spearmanr(syn["adjusted_homophily"], syn["rdl_minus_dfs"])
        summary["spearman_homophily_vs_rdl_minus_dfs"] = {"rho": float(rho), "p": float(p), "n": len(syn)}
    return out, summary


def compare_meta_models(bank, families, protocol) -> dict:
    """LOO accuracy and regret of other meta-classifiers (the default was chosen from these on this
    bank, so its LOO accuracy is optimistic by that choice)."""
    from sklearn.dummy import DummyClassifier
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def imp(*steps):
        return make_pipeline(SimpleImputer(strategy="median"), *steps)

    models = {
        "random forest, 4 tasks a leaf (default)": None,
        "random forest, 2 tasks a leaf": imp(RandomForestClassifier(200, min_samples_leaf=2, random_state=0)),
        "logistic regression C=0.1": imp(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000)),
        "logistic regression C=1": imp(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000)),
        "5 nearest neighbours": imp(StandardScaler(), KNeighborsClassifier(5)),
        "class prior (majority)": DummyClassifier(strategy="prior"),
    }
    out = {}
    for name, model in models.items():
        _, s = evaluate(bank, families, protocol, model)
        out[name] = s["all"]["meta"]
        print(f"  meta-model {name}: accuracy {out[name]['accuracy']:.3f}, regret {out[name]['regret']:.4f}")
    return out


def main(argv=None) -> int:
    from skrel.relatron.bank import PerformanceBank

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bank", default=None, help="bank parquet (default: the shipped one)")
    parser.add_argument("--protocol", default="test", choices=["test", "test_asof"])
    parser.add_argument("--families", nargs="+", default=None)
    standard_flags(parser, "selector_loo", render=False)
    parser.add_argument("--compare-meta-models", action="store_true",
                        help="also report the other meta-classifiers tried (accuracy and regret, all tasks)")
    args = parser.parse_args(argv)
    bank = PerformanceBank.load(args.bank)
    families = args.families or [f for f in ("baseline", "dfs", "rdl", "relgt") if f in set(bank.to_frame()["family"])]
    out, summary = evaluate(bank, families, args.protocol)
    print(f"bank: {len(out)} tasks, {len(bank)} fits; families {families}; protocol {args.protocol}")
    print("true best family: " + ", ".join(f"{k} {v}" for k, v in out["truth"].value_counts().items()))
    print(f"| subset | tasks | {' | '.join(k for k in summary['all'] if k != 'tasks')} |")
    print("|---|---|" + "---|" * (len(summary["all"]) - 1))
    for subset in ("all", "real", "synthetic"):
        if subset in summary:
            s = summary[subset]
            anchor = s["validation"]["accuracy"]
            cells = [f"{v['accuracy']:.3f} ({'x%.2f' % (v['accuracy'] / anchor) if anchor else 'anchor 0'}; "
                     f"regret {v['regret']:.4f})" for k, v in s.items() if k != "tasks"]
            print(f"| {subset} | {s['tasks']} | {' | '.join(cells)} |")
    print("(accuracy (ratio to validation-only choice, the anchor); regret: mean test score lost against the best "
          "family, in the metric's units: AUROC fraction for binary tasks, MAE for regression)")
    if "spearman_homophily_vs_rdl_minus_dfs" in summary:
        sp = summary["spearman_homophily_vs_rdl_minus_dfs"]
        print(f"Spearman(adjusted homophily, RDL - DFS test gap), synthetic: {sp['rho']:.3f} (p={sp['p']:.3f}, "
              f"n={sp['n']})")
    if args.compare_meta_models:
        summary["meta_models"] = compare_meta_models(bank, families, args.protocol)
    if not args.no_save:
        Path(args.out).write_text(json.dumps({"protocol": args.protocol, "families": families, "summary": summary,
                                              "tasks": out.reset_index().to_dict(orient="records")}, indent=1,
                                             default=float))
    print(f"loo_accuracy: {summary['all']['meta']['accuracy']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
