"""DFS's neural learners: TorchFrameLearner (pytorch-frame MLP, ResNet, FT-Transformer through the
shared torch base) alone and inside DFSEstimator, with the loss-landscape tools."""

from __future__ import annotations

import io
import pickle

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV

from skrel.estimators._neural_tabular import NEURAL_LEARNERS, TorchFrameLearner, column_stats
from skrel.estimators.dfs import DFSEstimator
from skrel.estimators.registry import FAMILIES
from skrel.relatron import has_loss_surface, landscape_metrics

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = dict(max_depth=1, windows=[60], random_state=0)
TINY = dict(channels=8, num_layers=1, max_epochs=3, batch_size=64)


def _tiny(model="mlp", **kw):
    return TorchFrameLearner(model=model, **{**TINY, **kw})


def _matrix(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    X[rng.random(n) < 0.3, 1] = np.nan  # partly missing
    y = (X[:, 0] + np.nan_to_num(X[:, 1], nan=2.0) > 0.5).astype(int)  # missing carries signal
    return X, y


# ---------------------------------------------------------------------------- the learner alone
def test_missing_values_train_every_column():
    """pytorch-frame's default (no imputation) gives NaN gradients to a column with a missing cell; the
    learner imputes the training mean and adds an indicator, so every weight stays finite and is trained."""
    X, y = _matrix()
    est = _tiny(max_epochs=2, random_state=0).fit(X, y)
    np.testing.assert_array_equal(est.indicator_columns_, [1])
    enc = est.module_.backbone.encoder.encoder_dict["numerical"]
    assert torch.isfinite(enc.weight).all() and enc.weight.shape[0] == 5  # 4 columns + 1 indicator
    assert enc.mean[1] == pytest.approx(float(np.nanmean(X[:, 1])), rel=1e-5)
    untrained = _tiny(max_epochs=1, lr=1e-12, random_state=0).fit(X, y).module_.backbone.encoder.encoder_dict
    assert not torch.allclose(enc.weight[1], untrained["numerical"].weight[1])
    assert np.isfinite(est.predict_proba(np.full((3, 4), np.nan, dtype=np.float32))).all()
    no_ind = _tiny(add_indicator=False, max_epochs=1, random_state=0).fit(X, y)
    assert no_ind.module_.backbone.encoder.encoder_dict["numerical"].weight.shape[0] == 4


def test_column_stats_ignore_missing_and_never_divide_by_zero():
    X = np.array([[1.0, np.nan, 5.0], [3.0, np.nan, 5.0], [np.inf, np.nan, 5.0]])
    stats = column_stats(X)
    from torch_frame.data.stats import StatType

    assert stats[0][StatType.MEAN] == 2.0 and stats[0][StatType.STD] == 1.0
    assert stats[1][StatType.MEAN] == 0.0 and stats[1][StatType.STD] == 1.0
    assert stats[2][StatType.STD] == 1.0


@pytest.mark.parametrize("model", NEURAL_LEARNERS)
def test_each_model_fits_binary_multiclass_and_regression(model):
    X, y = _matrix()
    clf = _tiny(model, random_state=0).fit(X, y)
    assert is_classifier(clone(clf).set_params(task_type="binary")) and clf.task_type_ == "binary"
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(1), 1)
    assert set(clf.predict(X)) <= {0, 1}
    y3 = np.digitize(X[:, 0], [-0.5, 0.5]) * 10  # labels 0, 10, 20
    multi = _tiny(model, random_state=0).fit(X, y3)
    np.testing.assert_array_equal(multi.classes_, [0, 10, 20])
    assert multi.predict_proba(X).shape == (len(X), 3) and set(multi.predict(X)) <= {0, 10, 20}
    yr = 3.0 * X[:, 0] + 1.0
    reg = _tiny(model, random_state=0).fit(X, yr)
    assert reg.task_type_ == "regression" and is_regressor(clone(reg).set_params(task_type="regression"))
    pred = reg.predict(X)
    assert pred.shape == (len(X),) and np.isfinite(pred).all()
    assert reg.embed(X).shape == (len(X), 8)


def test_early_stopping_restores_the_best_epoch():
    X, y = _matrix(300)
    est = _tiny(max_epochs=8, n_iter_no_change=2, lr=0.05, random_state=0).fit(X[:200], y[:200], X[200:], y[200:])
    scores = est.validation_scores_
    assert len(scores) == len(est.history_) <= 8
    assert est.best_epoch_ == int(np.argmax(scores)) and est.best_score_ == max(scores)
    if len(scores) < 8:  # stopped early: n_iter_no_change epochs after the best
        assert len(scores) - 1 - est.best_epoch_ == 2
    from sklearn.metrics import roc_auc_score

    # the kept weights are the best epoch's: their validation AUROC is the recorded best score
    assert roc_auc_score(y[200:], est.predict_proba(X[200:])[:, 1]) == pytest.approx(est.best_score_, abs=1e-6)
    none = _tiny(max_epochs=3, random_state=0).fit(X[:200], y[:200])
    assert none.best_score_ is None and none.validation_scores_ == [] and len(none.history_) == 3


def test_learner_same_seed_same_predictions_pickle_and_checks():
    X, y = _matrix()
    a = _tiny("resnet", random_state=3).fit(X, y).predict_proba(X)
    est = _tiny("resnet", random_state=3).fit(X, y)
    np.testing.assert_array_equal(est.predict_proba(X), a)
    assert not np.array_equal(_tiny("resnet", random_state=4).fit(X, y).predict_proba(X), a)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(est)).predict_proba(X), a)
    with pytest.raises(ValueError, match="3 features, the learner was fitted on 4"):
        est.predict(X[:, :3])
    with pytest.raises(ValueError, match="not seen in fit"):
        est.probe_batches(X[:4], [0, 1, 7, 1])
    with pytest.raises(NotFittedError):
        _tiny().predict(X)
    with pytest.raises(ValueError, match="model"):
        TorchFrameLearner(model="tabnet").fit(X, y)


# ---------------------------------------------------------------------------- inside DFSEstimator
@pytest.mark.parametrize("model", NEURAL_LEARNERS)
@pytest.mark.parametrize("kind", ["binary", "regression"])
def test_dfs_fits_each_neural_learner(model, kind, shop_binary, shop_regression):
    db, task = shop_binary if kind == "binary" else shop_regression
    est = DFSEstimator(**FAST, learner=_tiny(model)).fit(db, task)
    assert isinstance(est.learner_, TorchFrameLearner) and est.learner_.model == model
    assert est.learner_.task_type_ == kind and est.learner_.random_state == 0
    assert est.learner_.n_features_in_ == len(est.feature_names_)
    X, y = task.split(db, "test")
    out = est.predict_proba(X) if kind == "binary" else est.predict(X)
    assert out.shape[0] == len(X) and np.isfinite(out).all()
    assert est.learner_.validation_scores_  # the task's val split drove early stopping
    assert est.module_ is est.learner_.module_


def test_dfs_learner_by_name_uses_the_defaults(shop_binary):
    db, task = shop_binary
    est = DFSEstimator(**FAST, learner="resnet", n_jobs=1).fit(db, task)
    assert est.learner_.get_params()["model"] == "resnet" and est.learner_.n_jobs == 1
    assert est.learner_.channels == 64 and len(est.learner_.history_) <= 50
    with pytest.raises(ValueError, match="learner"):
        DFSEstimator(learner="transformer").fit(db, task)


def test_dfs_neural_same_seed_same_predictions_and_joblib(shop_binary, tmp_path):
    db, task = shop_binary
    X, _ = task.split(db, "test")
    a = DFSEstimator(**FAST, learner=_tiny()).fit(db, task)
    b = DFSEstimator(**FAST, learner=_tiny()).fit(db, task)
    proba = a.predict_proba(X)
    np.testing.assert_array_equal(b.predict_proba(X), proba)
    c = DFSEstimator(**{**FAST, "random_state": 1}, learner=_tiny()).fit(db, task)
    assert not np.array_equal(c.predict_proba(X), proba)
    path = tmp_path / "dfs_mlp.joblib"
    joblib.dump(a, path)
    np.testing.assert_array_equal(joblib.load(path).predict_proba(X), proba)
    buf = io.BytesIO()
    pickle.dump(a, buf)
    np.testing.assert_array_equal(pickle.loads(buf.getvalue()).predict_proba(X), proba)


def test_dfs_grid_search_reaches_the_learner_hyperparameters(shop_binary):
    db, task = shop_binary
    X, y = task.split(db, "train")
    search = GridSearchCV(DFSEstimator(**FAST, learner=_tiny(max_epochs=1)), {"learner__channels": [8, 16]},
                          cv=2, scoring="roc_auc", error_score="raise").fit(X, y)
    assert search.best_estimator_.learner_.channels == search.best_params_["learner__channels"]


# ---------------------------------------------------------------------------- loss surface
def test_loss_surface_flag_follows_the_learner():
    spec = FAMILIES["dfs"]
    for learner, expected in [(None, False), ("tabpfn", False), ("mlp", True), ("resnet", True),
                              ("ft_transformer", True), (_tiny(), True)]:
        est = DFSEstimator(learner=learner)
        assert spec.has_loss_surface(est) is expected, learner
        assert has_loss_surface(est) is expected and hasattr(est, "probe_batches") is expected, learner
    assert not spec.has_loss_surface()  # the default DFS is LightGBM
    with pytest.raises(AttributeError, match="no torch module: only the neural learners"):
        DFSEstimator().module_
    assert not hasattr(DFSEstimator(learner="mlp"), "module_")  # not fitted


def test_landscape_on_neural_dfs_and_type_error_on_lightgbm(shop_binary):
    db, task = shop_binary
    X_val, y_val = task.split(db, "val")
    est = DFSEstimator(**FAST, learner=_tiny()).fit(db, task)
    proba = est.predict_proba(X_val)
    kw = dict(grid=3, radius=0.5, probe_batches=1, hessian_iters=5)
    a = landscape_metrics(est, X_val, y_val, **kw)
    b = landscape_metrics(est, X_val, y_val, **kw)
    for key in ("p1", "p2", "barrier", "flatness", "hessian_top"):
        assert np.isfinite(a[key]) and a[key] == b[key], key
    assert a["n_probe_rows"] == min(64, len(X_val)) and a["surface"][1, 1] == pytest.approx(a["loss"])
    np.testing.assert_array_equal(est.predict_proba(X_val), proba)  # weights restored
    lgbm = DFSEstimator(**FAST, n_estimators=5).fit(db, task)
    with pytest.raises(TypeError, match="no loss surface.*DFSEstimator with learner='mlp'"):
        landscape_metrics(lgbm, X_val, y_val, **kw)
    with pytest.raises(AttributeError, match="no torch module"):
        lgbm.module_


def test_ft_transformer_refuses_what_would_not_fit_in_memory(monkeypatch):
    from skrel.estimators import _neural_tabular

    X, y = _matrix()
    need = _neural_tabular.ft_transformer_bytes(64, 5, 1)  # 4 columns + 1 indicator, batch 64
    assert need == 16 * 64 * 1 * 8 * 36
    monkeypatch.setattr(_neural_tabular, "available_memory", lambda device: 2 * need - 2)
    with pytest.raises(MemoryError, match=r"FT-Transformer over 5 columns at batch_size=64 .* batch_size <= 63"):
        _tiny("ft_transformer").fit(X, y)
    _tiny("mlp", max_epochs=1).fit(X, y)  # the other models are not concerned
    monkeypatch.setattr(_neural_tabular, "available_memory", lambda device: 2 * need)
    _tiny("ft_transformer", max_epochs=1).fit(X, y)
