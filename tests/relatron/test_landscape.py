"""Loss-landscape metrics (skrel.relatron.landscape): analytic values on a known quadratic,
reproducibility, restoration of the weights, the scorer and the refit callable inside GridSearchCV."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score, cross_validate

from skrel.estimators.rdl import RDLEstimator
from skrel.model_selection import TemporalSplit
from skrel.relatron.landscape import (
    METRICS,
    _random_direction,
    landscape_metrics,
    landscape_refit,
    landscape_sign,
    make_landscape_scorer,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RDL = dict(channels=8, max_epochs=2, fanouts=[8, 4], encoder_layers=1, min_steps_per_epoch=None, random_state=0)
FAST = dict(grid=5, radius=0.5, probe_batches=1, hessian_iters=10)


# ---------------------------------------------------------------------------- a known quadratic
class _Quadratic(torch.nn.Module):
    """L(theta) = 0.5 (theta - theta0)^T A (theta - theta0), theta = (vec(W), b): minimum at the start."""

    def __init__(self, W0, b0, A, fail_after=None):
        super().__init__()
        self.W = torch.nn.Parameter(torch.as_tensor(W0, dtype=torch.float64).clone())
        self.b = torch.nn.Parameter(torch.as_tensor(b0, dtype=torch.float64).clone())
        self.register_buffer("theta0", torch.cat([self.W.detach().reshape(-1), self.b.detach()]).clone())
        self.register_buffer("A", torch.as_tensor(A, dtype=torch.float64))
        self.calls, self.fail_after = 0, fail_after

    def forward(self, batch):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("boom")
        return torch.cat([self.W.reshape(-1), self.b])

    def loss(self, raw, y):
        diff = raw - self.theta0
        return 0.5 * diff @ self.A @ diff


class QuadraticEstimator(RegressorMixin, BaseEstimator):
    """The torch-family contract (``module_``, ``probe_batches``, ``task_type_``) over a known quadratic."""

    def __init__(self, eigs=(10.0, 3.0, 2.0, 1.0, 0.5, 0.3, 0.2, 0.1), fail_after=None):
        self.eigs = eigs
        self.fail_after = fail_after

    def fit(self, X=None, y=None):
        rng = np.random.default_rng(0)
        Q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
        self.A_ = Q @ np.diag(self.eigs) @ Q.T
        self.module_ = _Quadratic(rng.normal(size=(3, 2)), rng.normal(size=2), self.A_, self.fail_after).eval()
        self.task_type_ = "regression"
        return self

    def probe_batches(self, X, y, max_batches=None):
        n = 3 if max_batches is None else min(3, max_batches)
        return [SimpleNamespace(y=torch.zeros(1)) for _ in range(n)]

    def predict(self, X):
        with torch.no_grad():
            return np.full(len(X), float(self.module_(None).sum()))


def _directions(est, seed, mode):
    params = [est.module_.W, est.module_.b]
    gen = torch.Generator().manual_seed(seed)
    return [torch.cat([d.reshape(-1) for d in _random_direction(params, gen, mode)]).numpy() for _ in range(2)]


@pytest.mark.parametrize("mode", ["filter", "tensor"])
def test_quadratic_metrics_equal_the_analytic_values(mode):
    est = QuadraticEstimator().fit()
    radius, grid = 0.8, 9
    m = landscape_metrics(est, np.zeros(4), np.zeros(4), grid=grid, radius=radius, directions=mode, random_state=3,
                          hessian_iters=60, hessian_tol=1e-10)
    d1, d2 = _directions(est, 3, mode)
    D = np.stack([d1, d2], 1)
    M = D.T @ est.A_ @ D  # the Hessian of f(a, b) = L(theta0 + a d1 + b d2)
    alphas = np.linspace(-radius, radius, grid)
    assert m["surface"].shape == (grid, grid)
    aa, bb = np.meshgrid(alphas, alphas, indexing="ij")
    np.testing.assert_allclose(m["surface"], 0.5 * (M[0, 0] * aa**2 + 2 * M[0, 1] * aa * bb + M[1, 1] * bb**2),
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(m["hessian_plane"], M, rtol=1e-6)
    assert m["p2"] == pytest.approx(np.linalg.eigvalsh(M)[-1], rel=1e-6)
    pts = np.stack([aa.ravel(), bb.ravel()])
    assert m["p1"] == pytest.approx(np.linalg.norm(M @ pts, axis=0).max(), rel=1e-6)
    rays = [(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (1, -1), (-1, 1), (-1, -1)]
    barrier = max(0.5 * radius**2 * (np.array(u) @ M @ np.array(u)) for u in rays)
    assert m["barrier"] == pytest.approx(barrier, rel=1e-9)
    assert m["hessian_top"] == pytest.approx(10.0, rel=1e-6)
    assert m["loss"] == pytest.approx(0.0, abs=1e-12)
    expected = -(np.log1p(m["p1"]) + np.log1p(m["p2"]) + np.log1p(m["barrier"])) / 3
    assert m["flatness"] == pytest.approx(expected)


def test_direction_normalisation():
    est = QuadraticEstimator().fit()
    W, b = est.module_.W.detach(), est.module_.b.detach()
    dW, db = _random_direction([est.module_.W, est.module_.b], torch.Generator().manual_seed(0), "filter")
    np.testing.assert_allclose(dW.norm(dim=1), W.norm(dim=1), rtol=1e-12)  # each filter (row) to its weight row
    assert not db.any()  # 1-D parameters (biases) stay put
    dW, db = _random_direction([est.module_.W, est.module_.b], torch.Generator().manual_seed(0), "tensor")
    assert float(dW.norm()) == pytest.approx(float(W.norm())) and float(db.norm()) == pytest.approx(float(b.norm()))
    assert not np.allclose(dW.norm(dim=1), W.norm(dim=1))


def test_hessian_top_is_the_largest_eigenvalue_at_a_saddle():
    # power iteration alone would find -4 (largest magnitude); the shifted second run finds the top, 3
    est = QuadraticEstimator(eigs=(-4.0, 3.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01)).fit()
    m = landscape_metrics(est, np.zeros(4), np.zeros(4), metrics=["hessian_top"], hessian_iters=200,
                          hessian_tol=1e-12)
    assert m["hessian_top"] == pytest.approx(3.0, rel=1e-4)
    assert m["surface"] is None and np.isnan(m["p1"])


def test_same_seed_same_numbers_and_weights_restored():
    est = QuadraticEstimator().fit()
    est.module_.train()
    before = [p.detach().clone() for p in est.module_.parameters()]
    a = landscape_metrics(est, np.zeros(4), np.zeros(4), grid=5, random_state=7)
    b = landscape_metrics(est, np.zeros(4), np.zeros(4), grid=5, random_state=7)
    c = landscape_metrics(est, np.zeros(4), np.zeros(4), grid=5, random_state=8)
    for key in METRICS:
        assert a[key] == b[key], key
    np.testing.assert_array_equal(a["surface"], b["surface"])
    assert not np.allclose(a["surface"], c["surface"])
    assert est.module_.training  # the mode it had
    for p, q in zip(before, est.module_.parameters()):
        assert torch.equal(p, q)


def test_weights_restored_when_the_measurement_fails():
    est = QuadraticEstimator(fail_after=5).fit()
    before = [p.detach().clone() for p in est.module_.parameters()]
    with pytest.raises(RuntimeError, match="boom"):
        landscape_metrics(est, np.zeros(4), np.zeros(4), grid=5)
    for p, q in zip(before, est.module_.parameters()):
        assert torch.equal(p, q)


def test_bad_parameters_say_what_to_do():
    est = QuadraticEstimator().fit()
    with pytest.raises(ValueError, match="odd"):
        landscape_metrics(est, np.zeros(4), np.zeros(4), grid=4)
    with pytest.raises(ValueError, match="'filter' or 'tensor'"):
        landscape_metrics(est, np.zeros(4), np.zeros(4), directions="layer")
    with pytest.raises(ValueError, match="unknown landscape metrics"):
        landscape_metrics(est, np.zeros(4), np.zeros(4), metrics=["p3"])
    with pytest.raises(ValueError, match="metric must be one of"):
        make_landscape_scorer("sharpness")


def test_learners_without_a_loss_surface_get_a_type_error(shop_binary):
    from skrel.estimators.baseline import BaselineEstimator
    from skrel.estimators.dfs import DFSEstimator

    db, task = shop_binary
    X, y = task.split(db, "val")
    for est in (BaselineEstimator(), DFSEstimator()):
        for call in (lambda: landscape_metrics(est, X, y), lambda: make_landscape_scorer("p1")(est, X, y)):
            with pytest.raises(TypeError, match="no loss surface.*RDLEstimator, RelGTEstimator"):
                call()
    with pytest.raises(NotFittedError):
        landscape_metrics(RDLEstimator(), X, y)


# ---------------------------------------------------------------------------- scorer on the quadratic
def test_scorer_signs_and_shared_surface():
    est = QuadraticEstimator().fit()
    X, y = np.zeros(4), np.zeros(4)
    m = landscape_metrics(est, X, y, grid=5, random_state=1)
    calls = est.module_.calls
    for metric in ("p1", "p2", "barrier"):
        assert make_landscape_scorer(metric, grid=5, random_state=1)(est, X, y) == pytest.approx(-m[metric])
    # one surface evaluation for the three scorers: 25 points + the centre, 3 probe batches each
    assert est.module_.calls - calls == 26 * 3
    assert make_landscape_scorer("flatness", grid=5, random_state=1)(est, X, y) == pytest.approx(m["flatness"])
    assert make_landscape_scorer("hessian_top", random_state=1)(est, X, y) == pytest.approx(-10.0, rel=1e-3)
    assert "p1" in repr(make_landscape_scorer("p1", grid=5))


# ---------------------------------------------------------------------------- refit
def test_refit_on_a_synthetic_cv_results():
    cv_results = {
        "mean_test_score": np.array([0.90, 0.70, 0.89, 0.88, 0.50]),
        "mean_test_p1": np.array([-5.0, 0.0, -1.0, -4.0, 0.0]),
        "mean_test_p2": np.array([-5.0, 0.0, -2.0, -1.0, 0.0]),
        "mean_test_barrier": np.array([-5.0, 0.0, -1.0, -3.0, 0.0]),
    }
    # top-3 by score: 0 (0.90), 2 (0.89), 3 (0.88). Normalised over them:
    # score [1, 0.5, 0]; p1 [0, 1, 0.25]; p2 [0, 0.75, 1]; barrier [0, 1, 0.5]
    # votes: 0: 0.4; 2: 0.2 + 0.2 * 2.75 = 0.75; 3: 0 + 0.2 * 1.75 = 0.35  -> 2
    refit = landscape_refit(top_k=3)
    top, votes = refit.votes(cv_results)
    np.testing.assert_array_equal(top, [0, 2, 3])
    np.testing.assert_allclose(votes, [0.4, 0.75, 0.35])
    assert refit(cv_results) == 2
    assert landscape_refit(top_k=1)(cv_results) == 0  # validation alone
    assert landscape_refit(top_k=3, weights=(1.0, 0, 0, 0))(cv_results) == 0
    # all five: score [1, .5, .975, .95, 0]; p1 [0, 1, .8, .2, 1]; p2 [0, 1, .6, .8, 1]; barrier [0, 1, .8, .4, 1]
    # votes by index [0.4, 0.8, 0.83, 0.66, 0.6] -> 2; with the landscape weighted up, the flattest (1) wins
    top, votes = landscape_refit(top_k=5).votes(cv_results)
    np.testing.assert_array_equal(top, [0, 2, 3, 1, 4])
    np.testing.assert_allclose(votes, [0.4, 0.83, 0.66, 0.8, 0.6])
    assert landscape_refit(top_k=5)(cv_results) == 2
    assert landscape_refit(top_k=5, weights=(0.1, 0.3, 0.3, 0.3))(cv_results) == 1
    # validation-score NaNs are never picked; a landscape NaN counts as the worst
    nan = {**cv_results, "mean_test_score": np.array([np.nan, 0.70, 0.89, 0.88, 0.50]),
           "mean_test_p1": np.array([-5.0, 0.0, np.nan, -4.0, 0.0])}
    top, votes = landscape_refit(top_k=2, weights=(0.2, 0.8, 0, 0)).votes(nan)
    np.testing.assert_array_equal(top, [2, 3])
    np.testing.assert_allclose(votes, [0.2, 0.8])
    assert landscape_refit(top_k=2, weights=(0.2, 0.8, 0, 0))(nan) == 3


def test_refit_chooses_from_scores_and_measured_landscapes():
    """choose() takes what a search measures (scorer values, landscape_metrics as they come: sharpness
    greater is sharper) and picks what __call__ picks over the equivalent greater-is-better cv_results_."""
    scores = [0.90, 0.70, 0.89, 0.88, 0.50]
    measured = [{"p1": p1, "p2": p2, "barrier": b, "flatness": -p1}
                for p1, p2, b in [(5.0, 5.0, 5.0), (0.0, 0.0, 0.0), (1.0, 2.0, 1.0), (4.0, 1.0, 3.0), (0.0, 0.0, 0.0)]]
    cv_results = {"mean_test_score": scores, **{f"mean_test_{k}": [-m[k] for m in measured]
                                                for k in ("p1", "p2", "barrier")}}
    for refit in (landscape_refit(top_k=3), landscape_refit(top_k=5, weights=(0.1, 0.3, 0.3, 0.3)),
                  landscape_refit(top_k=5, landscape_keys=("flatness",), weights=(0.5, 0.5))):
        cv = cv_results if "flatness" not in refit.landscape_keys else {
            "mean_test_score": scores, "mean_test_flatness": [m["flatness"] for m in measured]}
        assert refit.choose(scores, measured) == refit(cv)
    assert landscape_refit(top_k=3).choose(scores, measured) == 2
    assert landscape_refit(top_k=5, weights=(0.1, 0.3, 0.3, 0.3)).choose(scores, measured) == 1
    assert [landscape_sign(m) for m in ("p1", "p2", "hessian_top", "barrier", "flatness")] == [-1, -1, -1, -1, 1]
    with pytest.raises(ValueError, match="scores has 2 entries but landscapes 1"):
        landscape_refit().choose([0.5, 0.6], measured[:1])


def test_refit_errors_name_the_columns():
    with pytest.raises(KeyError, match="mean_test_ column for \\['p2'\\]"):
        landscape_refit()({"mean_test_score": [1.0], "mean_test_p1": [0.0], "mean_test_barrier": [0.0]})
    with pytest.raises(ValueError, match="weights has 2 entries"):
        landscape_refit(weights=(0.5, 0.5))


# ---------------------------------------------------------------------------- a real torch family
@pytest.fixture(scope="module")
def rdl_fitted(shop_binary):
    db, task = shop_binary
    X, y = task.split(db, "train")
    return RDLEstimator(**RDL).fit(X, y), task.split(db, "val")


def test_rdl_metrics_are_finite_reproducible_and_leave_predictions_unchanged(rdl_fitted):
    est, (X_val, y_val) = rdl_fitted
    proba = est.predict_proba(X_val)
    a = landscape_metrics(est, X_val, y_val, **FAST)
    b = landscape_metrics(est, X_val, y_val, **FAST)
    for key in METRICS:
        assert np.isfinite(a[key]) and a[key] == b[key], key
    assert a["surface"].shape == (5, 5) and a["n_probe_batches"] == 1 and a["hessian_top"] > 0
    assert a["surface"][2, 2] == pytest.approx(a["loss"])
    assert not est.module_.training
    np.testing.assert_array_equal(est.predict_proba(X_val), proba)
    t = landscape_metrics(est, X_val, y_val, **{**FAST, "directions": "tensor"}, metrics=["p2"])
    assert np.isfinite(t["p2"]) and t["p2"] != a["p2"]


def test_scorer_and_refit_inside_grid_search_with_temporal_split(shop_binary):
    db, task = shop_binary
    X, y = task.split(db, "train")
    kw = dict(grid=3, radius=0.5, probe_batches=1)
    scoring = {"auc": "roc_auc", **{k: make_landscape_scorer(k, **kw) for k in ("p1", "p2", "barrier")}}
    refit = landscape_refit(top_k=2, metric_key="auc")
    search = GridSearchCV(RDLEstimator(**{**RDL, "max_epochs": 1}), {"lr": [0.005, 0.05], "random_state": [0, 1]},
                          cv=TemporalSplit(2, gap=task.window), scoring=scoring, refit=refit, error_score="raise")
    search.fit(X, y)
    res = search.cv_results_
    for k in ("p1", "p2", "barrier"):
        assert np.isfinite(res[f"mean_test_{k}"]).all()
    assert (res["mean_test_p1"] <= 0).all() and (res["mean_test_barrier"] <= 0).all()  # negated non-negatives
    assert search.best_index_ == refit(res)
    assert search.best_index_ in np.argsort(-res["mean_test_auc"], kind="stable")[:2]
    assert search.predict_proba(task.split(db, "test")[0]).shape[1] == 2


def test_scorer_in_cross_validate(shop_binary):
    db, task = shop_binary
    X, y = task.split(db, "train")
    out = cross_validate(RDLEstimator(**{**RDL, "max_epochs": 1}), X, y, cv=TemporalSplit(2, gap=task.window),
                         scoring={"auc": "roc_auc", "flat": make_landscape_scorer("flatness", grid=3, probe_batches=1)},
                         error_score="raise")
    assert out["test_flat"].shape == (2,) and np.isfinite(out["test_flat"]).all()
    # alone, as the single scoring= of cross_val_score: the same numbers (same fits, same probe sets)
    alone = cross_val_score(RDLEstimator(**{**RDL, "max_epochs": 1}), X, y, cv=TemporalSplit(2, gap=task.window),
                            scoring=make_landscape_scorer("flatness", grid=3, probe_batches=1), error_score="raise")
    np.testing.assert_allclose(alone, out["test_flat"])


def test_relgt_has_a_loss_surface(shop_regression):
    from skrel.estimators.relgt import RelGTEstimator

    db, task = shop_regression
    est = RelGTEstimator(tokens=12, channels=8, heads=2, centroids=8, max_epochs=1, batch_size=64,
                         random_state=0).fit(db, task)
    X_val, y_val = task.split(db, "val")
    pred = est.predict(X_val)
    m = landscape_metrics(est, X_val, y_val, **FAST)
    assert all(np.isfinite(m[k]) for k in METRICS)
    np.testing.assert_array_equal(est.predict(X_val), pred)
