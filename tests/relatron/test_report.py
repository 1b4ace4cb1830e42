"""The model-selection report (skrel.relatron.report) on a selector-shaped object built from real pieces:
real task embeddings of tiny synthetic tasks, real RDL and DFS fits, a real loss landscape."""

from __future__ import annotations

import base64
import re
import time
from html.parser import HTMLParser
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from skrel.datasets import make_synthetic
from skrel.estimators.registry import FAMILIES, make_model
from skrel.metrics import evaluate
from skrel.relatron import task_embedding
from skrel.relatron.landscape import landscape_metrics
from skrel.relatron.report import SECTIONS, render_report, write_report

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PNG = b"\x89PNG\r\n\x1a\n"
COMPONENTS = ("homophily", "feature_affinity", "temporal", "scale")
SIZE = dict(n_entities=100, n_rows=2000)


def _fit_pair(db, task):
    """An RDL (the registry's fast settings) and a depth-1 DFS, each with its validation ROC AUC."""
    X_val, y_val = task.split(db, "val")
    out = {}
    for family, extra in (("rdl", {}), ("dfs", {"max_depth": 1})):
        params = {**FAMILIES[family].test_params, **extra, "random_state": 0}
        t0 = time.perf_counter()
        est = make_model(family, **params).fit(db, task)
        out[family] = (params, est, evaluate(est, X_val, y_val, "roc_auc"), time.perf_counter() - t0)
    return out


class _Parser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs, self.ids, self.scripts = [], set(), 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "img":
            self.imgs.append(attrs)
        if tag == "script":
            self.scripts += 1


def _parse(text):
    parser = _Parser()
    parser.feed(text)
    parser.close()
    return parser


@pytest.fixture(scope="module")
def selection():
    """A selector-shaped namespace whose every number comes from a real computation."""
    # The bank: tiny synthetic tasks of different label homophily, each with its embedding and the family
    # that won it (validation ROC AUC of the two fits).
    bank_rows = []
    for i, eta in enumerate((0.0, 0.5, 1.0)):
        db_b, tasks_b = make_synthetic(**SIZE, homophily=eta, random_state=10 + i)
        emb_b = task_embedding(db_b, tasks_b["synthetic"], components=COMPONENTS)
        fits_b = _fit_pair(db_b, tasks_b["synthetic"])
        best = max(fits_b, key=lambda f: fits_b[f][2])
        bank_rows.append({"task_id": f"synthetic-h{eta}", "group": f"synthetic-{i}", "source": "synthetic",
                          "task_type": emb_b.task_type, "best_family": best,
                          **{f"emb:{k}": v for k, v in emb_b.items()}})
    bank = pd.DataFrame(bank_rows)
    emb_cols = [c for c in bank.columns if c.startswith("emb:")]

    # The user's task.
    db, tasks = make_synthetic(**SIZE, homophily=0.8, random_state=0)
    task = tasks["synthetic"]
    emb = task_embedding(db, task, components=COMPONENTS)
    fits = _fit_pair(db, task)
    # A second RDL so that two candidates have a loss surface.
    X_val, y_val = task.split(db, "val")
    params2 = {**fits["rdl"][0], "lr": 0.02}
    t0 = time.perf_counter()
    rdl2 = make_model("rdl", **params2).fit(db, task)
    fits["rdl-lr"] = (params2, rdl2, evaluate(rdl2, X_val, y_val, "roc_auc"), time.perf_counter() - t0)

    # Nearest bank tasks and a distance-weighted vote as the meta-classifier's probabilities.
    x = np.array([emb.get(c[4:], np.nan) for c in emb_cols])
    M = bank[emb_cols].to_numpy(dtype=float)
    scale = np.nanstd(np.vstack([M, x]), axis=0)
    scale[~(scale > 0)] = 1.0
    dist = np.sqrt(np.nansum(((M - x) / scale) ** 2, axis=1))
    nearest = pd.DataFrame({"task_id": bank["task_id"], "distance": dist, "best_family": bank["best_family"]})
    nearest = nearest.sort_values("distance").reset_index(drop=True)
    weights = 1.0 / (dist + 1e-9)
    proba = {f: float(weights[bank["best_family"].to_numpy() == f].sum() / weights.sum()) for f in ("rdl", "dfs")}
    selected_family = max(proba, key=proba.get)

    landscapes = {k: landscape_metrics(fits[k][1], X_val, y_val, grid=5, radius=0.5, probe_batches=1,
                                       metrics=("p1", "p2", "barrier", "flatness")) for k in ("rdl", "rdl-lr")}
    names = ["rdl", "rdl-lr", "dfs"]
    vals = np.array([fits[k][2] for k in names])
    rank = pd.Series(-vals).rank(method="first").astype(int).to_numpy()
    flat = [landscapes[k]["flatness"] if k in landscapes else np.nan for k in names]
    best_key = names[int(np.argmin(rank))]
    results = pd.DataFrame({
        "family": ["rdl", "rdl", "dfs"],
        "params": [fits[k][0] for k in names],
        "val": vals,
        "rank": rank,
        "fit_seconds": [fits[k][3] for k in names],
        "landscape_p1": [landscapes[k]["p1"] if k in landscapes else np.nan for k in names],
        "landscape_p2": [landscapes[k]["p2"] if k in landscapes else np.nan for k in names],
        "landscape_barrier": [landscapes[k]["barrier"] if k in landscapes else np.nan for k in names],
        "landscape_flatness": flat,
        "selected": [k == best_key for k in names],
        "source": ["bank", "random", "random"],
    })
    top = [{"params": fits[k][0], "estimator": fits[k][1], "val": fits[k][2], "landscape": landscapes.get(k)}
           for k in sorted(names, key=lambda k: -fits[k][2])]
    selector = SimpleNamespace(
        task_embedding_=emb, bank_tasks_=bank, embedding_columns_=emb_cols, nearest_tasks_=nearest,
        macro_proba_=proba, selected_family_=selected_family, macro_reason_="meta-classifier",
        search_results_=results, top_candidates_=top, best_estimator_=fits[best_key][1], metric_="roc_auc",
        task_name_="synthetic <script>alert(1)</script> & 5$",
    )
    return selector, fits, task.split(db, "test")


def _check_images(text, expected):
    parser = _parse(text)
    by_id = {img.get("id"): img for img in parser.imgs}
    for section in expected:
        img = by_id.get(f"fig-{section}")
        assert img is not None, f"no figure for section {section!r}; figures: {sorted(by_id)}"
        assert img["alt"].startswith(f"{section}:")
        prefix = "data:image/png;base64,"
        assert img["src"].startswith(prefix)
        assert base64.b64decode(img["src"][len(prefix):], validate=True).startswith(PNG)
    return parser


# A best estimator has per-epoch history (torch) or feature importances (LightGBM), not both: the two cases
# together show every section's figure.
BEST = {"rdl": ("learning-curves", "features", "has no feature importances"),
        "dfs": ("features", "learning-curves", "has no per-epoch history_")}


@pytest.mark.parametrize("best", sorted(BEST))
def test_full_report(selection, tmp_path, best):
    selector, fits, (X_test, y_test) = selection
    selector = SimpleNamespace(**{**vars(selector), "best_estimator_": fits[best][1]})
    out = write_report(selector, tmp_path / "sub" / "report.html", X_test=X_test, y_test=y_test)
    assert out == tmp_path / "sub" / "report.html" and out.exists()
    text = out.read_text(encoding="utf-8")
    shown, omitted, why = BEST[best]
    parser = _check_images(text, [sid for sid, _ in SECTIONS if sid != omitted])
    assert f'id="fig-{omitted}"' not in text
    assert text.count("omitted because") == 1
    assert f"omitted because the best estimator ({type(fits[best][1]).__name__}) {why}" in text
    assert {f"sec-{sid}" for sid, _ in SECTIONS} <= parser.ids
    # Self-contained: no script (the task name's <script> is escaped), no external resources.
    assert parser.scripts == 0
    assert "<script>" not in text
    assert "synthetic &lt;script&gt;alert(1)&lt;/script&gt; &amp; 5$" in text  # and "$" is no mathtext
    assert not re.search(r'(src|href)="(?!data:|#)', text)
    assert re.search(r"No loss surface for #\d \(DFSEstimator\)", text)
    # The test scores of the top candidates are on the page.
    for _, est, _, _ in fits.values():
        assert f"{evaluate(est, X_test, y_test, 'roc_auc'):.4g}" in text
    # Every meta-path of the embedding is in the homophily table.
    for key in selector.task_embedding_:
        if key.startswith("homophily[") and key.endswith("].adjusted"):
            assert key[len("homophily["):-len("].adjusted")].replace(">", "&gt;").replace("<", "&lt;") in text


def test_without_test_rows(selection, tmp_path):
    selector, _, _ = selection
    text = render_report(selector)
    assert "No test scores" in text and "<th>test</th>" not in text


ATTRIBUTES = ["task_embedding_", "bank_tasks_", "embedding_columns_", "nearest_tasks_", "macro_proba_",
              "selected_family_", "macro_reason_", "search_results_", "top_candidates_", "best_estimator_", "metric_",
              "task_name_"]


# Absent and None are read alike; alternate them over the attributes (each render takes about a second).
@pytest.mark.parametrize(("missing", "how"), [(a, ("absent", "none")[i % 2]) for i, a in enumerate(ATTRIBUTES)])
def test_missing_attribute_omits_its_section(selection, tmp_path, missing, how):
    selector, _, _ = selection
    attrs = dict(vars(selector))
    if how == "absent":
        del attrs[missing]
    else:
        attrs[missing] = None
    text = write_report(SimpleNamespace(**attrs), tmp_path / "r.html").read_text(encoding="utf-8")
    _parse(text)
    affected = {
        "task_embedding_": ["task-map", "homophily"], "bank_tasks_": ["task-map"], "embedding_columns_": ["task-map"],
        "search_results_": ["candidates"], "top_candidates_": ["landscape"],
        "best_estimator_": ["learning-curves", "features"],
    }.get(missing, [])
    for section in affected:
        body = text.split(f'id="sec-{section}"', 1)[1].split("</section>", 1)[0]
        assert "omitted because" in body and "fig-" not in body
        assert missing in body
    if missing == "nearest_tasks_":
        assert "omitted because the selector has no nearest_tasks_" in text
    if missing == "macro_proba_":
        assert 'id="fig-choice"' not in text and "omitted because the selector has no macro_proba_" in text


def test_empty_selector(tmp_path):
    """Nothing fitted: every section says why it is omitted, and the page still parses."""
    text = write_report(SimpleNamespace(), tmp_path / "r.html").read_text(encoding="utf-8")
    parser = _parse(text)
    assert parser.imgs == []
    for sid, _ in SECTIONS:
        body = text.split(f'id="sec-{sid}"', 1)[1].split("</section>", 1)[0]
        assert "omitted because" in body


def test_bank_of_one_task(selection):
    selector, _, _ = selection
    sel = SimpleNamespace(**{**vars(selector), "bank_tasks_": selector.bank_tasks_.head(1)})
    text = render_report(sel)
    assert "omitted because the bank has 1 task; a projection needs at least 2" in text
    assert 'id="fig-task-map"' not in text and 'id="fig-homophily"' in text


def test_test_rows_need_both(selection, tmp_path):
    selector, _, (X_test, _) = selection
    with pytest.raises(ValueError, match="both X_test and y_test"):
        write_report(selector, tmp_path / "r.html", X_test=X_test)
