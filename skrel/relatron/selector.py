"""``RelatronSelector``: choose the family for a task, search inside it, post-select by flatness.

Relatron (ICLR 2026, arXiv 2602.22552), from its description, on skrel's open performance bank
(:mod:`skrel.relatron.bank`):

1. **Task embedding** (:func:`~skrel.relatron.task_embedding`): homophily along meta-paths,
   path and feature affinities, temporal statistics, scale.
2. **Macro choice** of the family: a meta-classifier trained on the bank's tasks (their embeddings;
   each task labelled with the family whose validation-chosen configuration did best on test at
   the search budget, "budget-aware" labels) predicts the family. ``macro="val"`` fits each
   candidate family's most promising configuration and keeps the best on validation; a family
   name skips the choice. When the task's embedding is far from every bank task (farther than
   bank tasks are from their own nearest neighbours of another group), the meta-classifier would
   extrapolate: the selector warns and chooses on validation.
3. **Micro search** inside the family through :class:`~sklearn.model_selection.GridSearchCV` over
   a list of configurations (validation rows as a :class:`~sklearn.model_selection.PredefinedSplit`):
   first the configurations that did best on the most similar bank tasks, then draws from the
   registry's search space, ``budget`` fits in all.
4. **Post-selection**: the ``top_k`` candidates by validation are fitted with validation-based
   early stopping, their loss landscapes measured on validation rows
   (:func:`~skrel.relatron.landscape.landscape_metrics`), and a weighted vote of the validation
   score and flatness (:class:`~skrel.relatron.landscape.LandscapeRefit`) picks the one to keep.
   When a top-k learner has no loss surface (LightGBM), the best validation score is kept and only
   that candidate is refitted.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
import pandas as pd
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, PredefinedSplit
from sklearn.utils._param_validation import HasMethods, Interval, InvalidParameterError, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..data import RelationalDataset
from ..estimators._base import RelationalEstimator
from ..estimators.registry import FAMILIES, make_model
from ..metrics import METRICS, make_scorer
from ..utils import import_optional, seed_from
from .bank import BANK_PATH, EMB_PREFIX, PerformanceBank, bank_configurations
from .embedding import embed_task

# the task embedding (RDL seed embeddings) and the post-selection (loss landscapes) train torch networks:
# the selector needs the torch extra, and says so at import
import_optional("torch", "RelatronSelector")

__all__ = ["RelatronSelector", "SelectorWarning", "meta_features", "meta_proba"]

logger = logging.getLogger(__name__)

MACROS = ("meta", "val")
# The landscape metrics search_results_ shows, one landscape_<key> column each (those of the vote, and flatness).
_LANDSCAPE_COLUMNS = ("p1", "p2", "barrier", "flatness")


class _Rows(NamedTuple):
    """The training and validation rows of a fit (encoded labels)."""

    X: RelationalDataset
    y: np.ndarray
    X_val: RelationalDataset
    y_val: np.ndarray


class _Candidates(NamedTuple):
    """The candidate families, in order, and the estimators given with ``(name, estimator)`` pairs."""

    families: list
    given: dict


class _BankNeighbours(NamedTuple):
    """This task among the bank's: its tasks, the embedding columns compared and this task's
    values on them, the tasks by distance, whether this one is far from all (and how far)."""

    tasks: pd.DataFrame
    columns: list
    vector: np.ndarray
    nearest: pd.DataFrame
    far: bool
    distance: str


class _MacroChoice(NamedTuple):
    """The family chosen, why (one sentence), the meta-classifier's probabilities (empty without
    it), and the fits the choice took."""

    family: str
    reason: str
    proba: dict
    n_fits: int


class _SearchResult(NamedTuple):
    """One row per configuration searched (``family``, ``params``, ``source``, ``val`` in the
    metric's direction, ``rank``, the scorer's ``score``, ``fit_seconds``), and the fits made."""

    results: pd.DataFrame
    n_fits: int


class _PostSelection(NamedTuple):
    """The refitted top candidates, the index of the one kept, the search results with landscape
    columns and ``selected``, how the choice was made, and the fits made."""

    top: list
    chosen: int
    results: pd.DataFrame
    note: str
    n_fits: int


class SelectorWarning(UserWarning):
    """The selector could not follow its plan (a task unlike every bank task) and says what it did
    instead."""


def meta_features(columns) -> list[str]:
    """The embedding columns a meta-classifier can compare across databases: every ``emb:`` entry
    except the per-meta-path ones (``homophily[<path>]...``, named after one schema's tables) and
    standard errors."""
    out = []
    for c in columns:
        name = c[len(EMB_PREFIX):] if c.startswith(EMB_PREFIX) else c
        if name.startswith("homophily[") or name.endswith("_se"):
            continue
        out.append(c if c.startswith(EMB_PREFIX) else EMB_PREFIX + c)
    return out


def _default_meta_model(random_state):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline

    # min_samples_leaf=4: with a few dozen bank tasks, deeper trees learn the noise of near-tied
    # families (benchmarks/results/selector_loo.md compares the meta-models tried)
    return make_pipeline(SimpleImputer(strategy="median"),
                         RandomForestClassifier(n_estimators=200, min_samples_leaf=4, random_state=random_state))


def meta_proba(tasks: pd.DataFrame, labels: pd.Series, columns, vec, task_type: str, meta_model=None,
               random_state: int = 0) -> tuple[dict, int]:
    """The meta-classifier's family probabilities for one task.

    Parameters
    ----------
    tasks : DataFrame
        Bank tasks (:meth:`PerformanceBank.tasks`), with ``task_id``, ``task_type`` and ``columns``.
    labels : Series
        Best family per task id (:meth:`PerformanceBank.best_family`); tasks without one are left out.
    columns : list of str
        The ``emb:`` columns to learn from.
    vec : array of shape (1, len(columns))
        The task's embedding on those columns (NaN allowed: imputed).
    task_type : str
        Only bank tasks of the same kind (classification or regression) train the classifier,
        when there are at least four of them.
    meta_model : classifier, optional
        Cloned and fitted (default: median imputation, then a 200-tree random forest with at
        least 4 tasks per leaf).
    random_state : int

    Returns
    -------
    proba : dict of str to float
    n_tasks : int
        Bank tasks it learned from.
    """
    train = tasks.set_index("task_id").loc[[t for t in tasks["task_id"] if t in labels.index]]
    if not len(train):
        raise ValueError("No bank task has a best family to learn from (labels is empty: the bank's val and test "
                         "scores of these families are missing); choose the family on validation instead.")
    same = train["task_type"].map(_kind) == _kind(task_type)
    if same.sum() >= 4:
        train = train[same]
    y = labels.loc[train.index].to_numpy()
    if len(np.unique(y)) < 2:
        return {y[0]: 1.0}, len(train)
    model = _default_meta_model(random_state) if meta_model is None else clone(meta_model)
    model.fit(train[list(columns)].to_numpy(dtype=float), y)
    proba = model.predict_proba(np.asarray(vec, dtype=float).reshape(1, -1))[0]
    return {str(c): float(p) for c, p in zip(model.classes_, proba)}, len(train)


_BUDGET_FORMS = ("a number of fits (an int >= 1) or a time budget (seconds > 0 as a float, or a duration "
                 "string with a unit such as '300s' or '10min')")


def _parse_budget(budget):
    """``(fits, seconds)``: an int is a number of fits, a string (``"300s"``, ``"10min"``) or a
    float a time budget.

    Raises
    ------
    InvalidParameterError
        A boolean, a string that is not a duration with a unit, or a budget that is not positive
        and finite (``0``, ``-1``, ``"0s"`` and ``"-5s"`` alike), naming the ``budget`` parameter.
    """
    def invalid(why):
        return InvalidParameterError(f"The 'budget' parameter of RelatronSelector must be {_BUDGET_FORMS}; "
                                     f"got {budget!r}, {why}.")

    if isinstance(budget, (bool, np.bool_)):
        raise invalid("a boolean")
    if isinstance(budget, Integral):
        if budget < 1:
            raise invalid("fewer than one fit")
        return int(budget), None
    if isinstance(budget, Real):
        seconds = float(budget)
    elif isinstance(budget, str):
        try:
            float(budget)
        except ValueError:
            pass
        else:  # pandas reads a bare "300" as 300 nanoseconds
            raise invalid("a number without a unit (an int counts fits; a duration needs a unit, e.g. '300s')")
        try:
            seconds = pd.Timedelta(budget).total_seconds()
        except ValueError:
            raise invalid("which is not a duration") from None
    else:
        raise invalid(f"of type {type(budget).__name__}")
    if not (np.isfinite(seconds) and seconds > 0):
        raise invalid("not a positive, finite duration")
    return None, float(seconds)


class RelatronSelector(RelationalEstimator):
    """Choose a family for a relational task, search inside it, and keep the flattest good model.

    Parameters
    ----------
    candidates : None, list of str or list of (str, estimator), default=None
        Families to choose among: registry names (default: every registered family; when the
        bank has no fits of one, the family is chosen on validation, and ``macro_reason_`` says
        why), or ``(name, estimator)`` pairs whose estimator starts the search (its parameters
        are the base; a name unknown to the bank is chosen on validation).
    budget : int, float or str, default=8
        Fits of the micro search (an int, at least 1), or a time budget in seconds (a positive
        float, or a duration string with a unit such as ``"300s"`` or ``"10min"``; the search
        stops starting fits when it is spent, after at least one).
    macro : {"meta", "val"} or str, default="meta"
        How the family is chosen: the bank's meta-classifier, one fit per candidate compared on
        validation, or a family name (no choice).
    post_selection : {"landscape"} or None, default="landscape"
        Re-rank the ``top_k`` candidates by a vote of validation score and loss-landscape
        flatness (when every top-k learner has a loss surface: the torch families, neural DFS), or
        keep the best validation score (None, or a top-k learner without a loss surface).
    top_k : int, default=3
        Candidates post-selected.
    weights : tuple of 4 floats, default=(0.4, 0.2, 0.2, 0.2)
        Vote weights of the validation score, ``p1``, ``p2`` and ``barrier``
        (:func:`~skrel.relatron.landscape.landscape_refit`).
    ensemble : bool, default=False
        Also fit the best configuration of the runner-up family and average the two models'
        outputs (probabilities or values).
    bank : PerformanceBank, str or None, default=None
        The bank (a :class:`~skrel.relatron.bank.PerformanceBank` or a parquet path; the bank
        shipped with skrel by default).
    meta_model : scikit-learn classifier or None, default=None
        The meta-classifier (default: median imputation then a 200-tree random forest, at least
        4 tasks per leaf).
    embedding_params : dict or None, default=None
        Extra keyword arguments of :func:`~skrel.relatron.task_embedding` (e.g.
        ``{"components": ("homophily", "temporal", "scale")}`` for a faster, coarser embedding).
    task_type : {"auto", "binary", "multiclass", "regression"}, default="auto"
    validation_fraction : float or None, default=0.2
        With ``fit(X, y)`` and no ``X_val``: the latest cutoffs held out for validation.
    n_jobs : int or None, default=None
        Parallel fits (the search, the one-fit-per-family validation choice, the post-selection
        refits; through joblib, so a ``joblib.parallel_backend`` context applies: inside
        ``joblib.parallel_backend("dask")`` they run on the Dask cluster, the database sent once
        per worker) and threads of the embedding.
    random_state : int, RandomState instance or None, default=None
        Seeds the search draws, every candidate and the meta-classifier.
    verbose : int, default=0
        1 logs each step; 2 also the search's progress.

    Attributes
    ----------
    selected_family_ : str
    macro_proba_ : dict of str to float
        The meta-classifier's probability per candidate family (empty without it).
    macro_reason_ : str
        Why the family was chosen, in one sentence.
    task_embedding_ : TaskEmbedding
    nearest_tasks_ : DataFrame
        Bank tasks by embedding distance: ``task_id``, ``distance``, ``best_family``.
    search_results_ : DataFrame
        One row per candidate: ``family``, ``params``, ``source`` (``"bank"`` or ``"random"``),
        ``val``, ``rank``, ``fit_seconds``, ``landscape_*``, ``selected``.
    best_params_ : dict
    best_estimator_ : estimator
        The kept model (fitted on train, early-stopped on validation).
    best_score_ : float
        Its validation score, in the metric's own direction.
    ensemble_members_ : list of estimator
        The models whose outputs are averaged: ``best_estimator_``, and with ``ensemble=True``
        the runner-up family's.
    top_candidates_ : list of dict
        The post-selected candidates: ``params``, ``estimator``, ``val``, ``landscape``.
    post_selection_note_ : str
        How the kept model was chosen among the top candidates.
    bank_tasks_ : DataFrame
        The bank's tasks (:meth:`PerformanceBank.tasks`).
    embedding_columns_ : list of str
        The ``emb:`` columns the meta-classifier used.
    n_fits_ : int
        Estimator fits made (search, post-selection, ensemble).
    metric_ : str
    task_name_ : str

    Examples
    --------
    >>> from skrel.datasets import load_flights
    >>> from skrel.relatron import RelatronSelector
    >>> db, tasks = load_flights()  # doctest: +SKIP
    >>> sel = RelatronSelector(budget=4, random_state=0).fit(db, tasks["plane-cancel"])  # doctest: +SKIP
    >>> sel.selected_family_, sel.best_params_  # doctest: +SKIP
    """

    _parameter_constraints: dict = {
        **RelationalEstimator._parameter_constraints,
        "candidates": [list, tuple, None],
        "budget": [Interval(Integral, 1, None, closed="left"), Interval(Real, 0, None, closed="neither"), str],
        "macro": [str],
        "post_selection": [StrOptions({"landscape"}), None],
        "top_k": [Interval(Integral, 1, None, closed="left")],
        "weights": [tuple, list],
        "ensemble": ["boolean"],
        "bank": [HasMethods(["tasks", "to_frame"]), str, os.PathLike, None],
        "meta_model": [HasMethods(["fit", "predict_proba"]), None],
        "embedding_params": [dict, None],
    }

    def __init__(self, candidates=None, budget=8, macro="meta", post_selection="landscape", top_k=3,
                 weights=(0.4, 0.2, 0.2, 0.2), ensemble=False, bank=None, meta_model=None, embedding_params=None,
                 task_type="auto", validation_fraction=0.2, n_jobs=None, random_state=None, verbose=0):
        self.candidates = candidates
        self.budget = budget
        self.macro = macro
        self.post_selection = post_selection
        self.top_k = top_k
        self.weights = weights
        self.ensemble = ensemble
        self.bank = bank
        self.meta_model = meta_model
        self.embedding_params = embedding_params
        self.task_type = task_type
        self.validation_fraction = validation_fraction
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None, *, X_val=None, y_val=None):
        """Embed the task, choose the family, search inside it, post-select, keep the model.

        Parameters
        ----------
        X : Database or RelationalDataset
        y : Task or array-like of shape (n,)
        X_val, y_val : RelationalDataset and array-like, optional
            Validation rows (``fit(X, y)`` only); without them the rows with the latest cutoffs
            (``validation_fraction``) are held out.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Before any fit: the validation rows make the metric undefined (ROC AUC over validation
            rows of a single class: every candidate would score NaN, so none could be chosen); the
            bank cannot be read, has no ``emb:`` columns or no fit with val and test scores.
        InvalidParameterError
            ``budget`` is not a positive number of fits or a positive duration.
        """
        return super().fit(X, y, X_val=X_val, y_val=y_val)

    def _fit(self, X, y, X_val, y_val):
        if X_val is None:
            raise ValueError("RelatronSelector needs validation rows: pass X_val/y_val, a task with a val split, "
                             "or fit(X, y) on rows with at least two cutoffs (validation_fraction).")
        self._check_params()
        self.seed_ = seed_from(self.random_state)
        task = self.task_
        self.metric_ = task.metric if task is not None else {"binary": "roc_auc", "multiclass": "accuracy",
                                                             "regression": "mae"}[self.task_type_]
        self.task_name_ = task.name if task is not None else "task"
        self._check_metric_defined(y_val)
        data = _Rows(X, y, X_val, y_val)
        bank = self._load_bank()
        candidates = self._candidates(bank)
        self._log(f"candidates {candidates.families}")
        self.task_embedding_ = self._embed(data)
        self._log(f"task embedding in {sum(self.task_embedding_.seconds.values()):.1f}s")
        near = self._compare_with_bank(bank, self.task_embedding_)
        self.bank_tasks_, self.embedding_columns_, self.nearest_tasks_ = near.tasks, near.columns, near.nearest
        macro = self._macro(bank, candidates, near, data)
        self.selected_family_, self.macro_reason_, self.macro_proba_ = macro.family, macro.reason, macro.proba
        self._log(f"family {macro.family}: {macro.reason}")
        search = self._micro(bank, candidates, macro.family, near.nearest, data)
        post = self._post_select(candidates, macro.family, search.results, data)
        self.search_results_ = post.results
        self.top_candidates_ = post.top
        self.post_selection_note_ = post.note
        best = post.top[post.chosen]
        self.best_params_, self.best_estimator_, self.best_score_ = best["params"], best["estimator"], best["val"]
        self.ensemble_members_ = [self.best_estimator_]
        n_fits = macro.n_fits + search.n_fits + post.n_fits
        if self.ensemble:
            runner_up = self._runner_up(bank, candidates, macro, near.nearest, data)
            if runner_up is not None:
                self.ensemble_members_.append(runner_up)
                n_fits += 1
        self.n_fits_ = n_fits
        return self

    def _check_params(self):
        if len(tuple(self.weights)) != 4:
            raise ValueError(f"weights needs 4 values (val, p1, p2, barrier), got {self.weights!r}.")
        _parse_budget(self.budget)

    def _check_metric_defined(self, y_val):
        """Refuse validation rows on which the metric is undefined (ROC AUC with a single class),
        before any fit: every candidate's validation score would be NaN."""
        spec = METRICS[self.metric_]
        if self.task_type_ == "regression" or spec.needs != "proba":
            return
        k = len(self.classes_)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # recent scikit-learn warns and returns NaN, older versions raise
            try:
                value = spec.fn(y_val, np.full((len(y_val), k), 1.0 / k), np.arange(k))
            except ValueError:
                value = np.nan
        if np.isfinite(value):
            return
        present = self.classes_[np.unique(y_val)].tolist()
        if self.task_ is not None:
            split = f"The val split of task {self.task_.name!r} ({len(y_val)} rows) holds"
        else:
            split = f"The {len(y_val)} validation rows (X_val/y_val, or the rows held out by validation_fraction) hold"
        raise ValueError(
            f"{split} only the class(es) {present} of {self.classes_.tolist()}, so the metric {self.metric_!r} is "
            "undefined on the validation split and no candidate can be compared. Give validation rows with every "
            "class (a later val_timestamp or a larger validation_fraction), or a task whose metric is defined on them."
        )

    # ------------------------------------------------------------------ steps (each returns what it found)
    def _load_bank(self) -> PerformanceBank:
        if self.bank is None or isinstance(self.bank, (str, os.PathLike)):
            bank = PerformanceBank.load(self.bank)
            name = f"The performance bank {_bank_path(self.bank)}"
        else:
            bank, name = self.bank, f"The performance bank passed as bank ({self.bank!r})"
        _check_bank(bank, name)
        return bank

    def _candidates(self, bank) -> _Candidates:
        """The candidate families (``candidates``, or every registered family)."""
        given = {}
        if self.candidates is None:
            # every registered family: one the bank has no fits of is still a candidate (measured on
            # validation; see _macro)
            names = list(FAMILIES)
        else:
            names = []
            for c in self.candidates:
                if isinstance(c, str):
                    if c not in FAMILIES:
                        raise ValueError(f"Unknown candidate family {c!r}; choose among {sorted(FAMILIES)} or pass "
                                         "(name, estimator) pairs.")
                    names.append(c)
                elif isinstance(c, tuple) and len(c) == 2 and isinstance(c[0], str) and hasattr(c[1], "fit"):
                    names.append(c[0])
                    given[c[0]] = c[1]
                else:
                    raise ValueError(f"A candidate is a family name or a (name, estimator) pair, got {c!r}.")
        if not names:
            raise ValueError("No candidate family: the bank has no fits of any registered family.")
        if len(set(names)) != len(names):
            raise ValueError(f"Candidate names repeat: {names}.")
        return _Candidates(names, given)

    def _embed(self, data: _Rows):
        """The task embedding of the training and validation rows (:func:`~skrel.relatron.embed_task`)."""
        params = {"random_state": self.seed_, "n_jobs": self.n_jobs, **(self.embedding_params or {})}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)
            return embed_task(data.X, data.y, data.X_val, data.y_val, task_type=self.task_type_, name=self.task_name_,
                              **params)

    def _compare_with_bank(self, bank, embedding) -> _BankNeighbours:
        """The bank's tasks by distance from this task's embedding, and whether it is far from all."""
        tasks = bank.tasks(budget=None)
        cols = [c for c in meta_features(bank.embedding_columns)
                if c[len(EMB_PREFIX):] in embedding and tasks[c].notna().mean() >= 0.8]
        if not cols:
            raise ValueError(
                f"None of the bank's {len(bank.embedding_columns)} 'emb:' columns is an entry of this task's "
                "embedding filled for at least 80% of bank tasks, so no bank task can be compared with this one: "
                "the bank was built with other embedding components or another skrel version. Rebuild it "
                "(`skrel bank build`), or widen embedding_params['components'].")
        vec = np.array([[embedding[c[len(EMB_PREFIX):]] for c in cols]], dtype=float)
        Z = tasks[cols].to_numpy(dtype=float)
        med = np.nanmedian(Z, axis=0)
        Z = np.where(np.isnan(Z), med, Z)
        v = np.where(np.isnan(vec), med, vec)
        scale = np.nanstd(Z, axis=0)
        scale[~(scale > 0)] = 1.0
        Zs, vs = (Z - med) / scale, (v - med) / scale
        d = np.sqrt(((Zs - vs) ** 2).mean(axis=1))
        nearest = pd.DataFrame({"task_id": tasks["task_id"], "distance": d, "best_family": tasks["best_family"]})
        nearest = nearest.sort_values(["distance", "task_id"]).reset_index(drop=True)
        # how far bank tasks are from their nearest task of another group: beyond the largest of
        # these (times 1.5), this task is farther from the bank than any bank task is from the rest
        groups = tasks["group"].to_numpy()
        D = np.sqrt((((Zs[:, None, :] - Zs[None, :, :]) ** 2).mean(axis=2)))
        D[groups[:, None] == groups[None, :]] = np.inf
        nn = D.min(axis=1)
        nn = nn[np.isfinite(nn)]
        limit = 1.5 * float(nn.max()) if len(nn) else np.inf
        far = bool(len(d) == 0 or d.min() > limit)
        distance = f"nearest distance {d.min():.2f} > {limit:.2f}" if len(d) else "empty bank"
        return _BankNeighbours(tasks, cols, vec, nearest, far, distance)

    def _macro(self, bank, candidates: _Candidates, near: _BankNeighbours, data: _Rows) -> _MacroChoice:
        """The family: given by name, the only candidate, the meta-classifier's, or the best on validation."""
        families, macro = candidates.families, self.macro
        if macro not in MACROS:
            if macro not in families:
                raise ValueError(f"macro must be 'meta', 'val' or one of the candidates {families}, got {macro!r}.")
            return _MacroChoice(macro, f"macro={macro!r} given", {}, 0)
        if len(families) == 1:
            return _MacroChoice(families[0], "the only candidate", {}, 0)
        unbanked = [f for f in families if f not in set(bank.to_frame()["family"])]
        if macro == "meta" and not candidates.given and not unbanked:
            if not near.far:
                return self._macro_by_meta_classifier(bank, candidates, near, data)
            warnings.warn(f"This task is unlike every bank task ({near.distance}); the meta-classifier would "
                          "extrapolate, so the family is chosen on validation instead.", SelectorWarning, stacklevel=5)
        if near.far:  # also with macro='val' or a candidate the bank does not know
            why = f"validation fallback ({near.distance})"
        elif unbanked and macro != "val":
            why = (f"validation: the bank has no fits of {', '.join(unbanked)}, so the meta-classifier cannot rank "
                   "it against the others; every candidate measured at its defaults")
        else:
            why = "macro='val'" if macro == "val" else "validation (a candidate is not in the bank)"
        return self._macro_by_validation(bank, candidates, near.nearest, data, why)

    def _macro_by_meta_classifier(self, bank, candidates: _Candidates, near: _BankNeighbours,
                                  data: _Rows) -> _MacroChoice:
        """The family the meta-classifier finds likeliest to win (budget-aware labels), or the best
        on validation when no bank task scores the candidates."""
        families = candidates.families
        fits, _ = _parse_budget(self.budget)
        labels = bank.best_family(budget=fits, families=families)  # budget-aware labels
        if not len(labels):
            warnings.warn(f"No bank task has val and test scores for the candidates {families}, so the "
                          "meta-classifier has nothing to learn from; the family is chosen on validation "
                          "instead.", SelectorWarning, stacklevel=6)
            return self._macro_by_validation(bank, candidates, near.nearest, data,
                                             "validation fallback (no bank task scores the candidates)")
        proba, n_tasks = meta_proba(near.tasks, labels, near.columns, near.vector, self.task_type_, self.meta_model,
                                    self.seed_)
        proba = {f: proba.get(f, 0.0) for f in families}
        family = max(families, key=lambda f: (proba[f], -families.index(f)))
        p = proba[family]
        reason = (f"meta-classifier over {n_tasks} bank tasks: P({family}) = {p:.2f}"
                  + (" (every one of them won by it)" if p == 1.0 else ""))
        return _MacroChoice(family, reason, proba, 0)

    def _macro_by_validation(self, bank, candidates: _Candidates, nearest, data: _Rows, why: str) -> _MacroChoice:
        """The family whose most promising configuration scores best on validation (one fit each)."""
        families = candidates.families
        estimators = [self._estimator(f, self._start_configs(bank, f, candidates, nearest)[0][0], candidates)
                      for f in families]
        scores = {f: val for f, (_, val, _) in zip(families, self._fit_many(estimators, data))}
        family = max(families, key=lambda f: (scores[f], -families.index(f)))
        reason = f"{why}: best validation {self.metric_} of one fit per family " + \
            ", ".join(f"{f} {self._in_metric_direction(s):.4f}" for f, s in scores.items())
        return _MacroChoice(family, reason, {}, len(families))

    def _start_configs(self, bank, family, candidates: _Candidates, nearest) -> list[tuple[dict, str]]:
        """Configurations to try, most promising first: the best ones on the nearest bank tasks,
        then the bank's draws from the registry's search space; each with its source."""
        out, seen = [], set()
        if family in candidates.given:
            return [({}, "given")]
        near = list(nearest["task_id"].head(5))
        for p in bank.configurations(near, family, top=2):
            key = json.dumps(p, sort_keys=True)
            if key not in seen:
                seen.add(key)
                out.append((p, "bank"))
        n = 4 * 8 + 8
        if family in FAMILIES and FAMILIES[family].search_space:
            for p in bank_configurations(family, n, random_state=self.seed_):
                key = json.dumps(p, sort_keys=True)
                if key not in seen:
                    seen.add(key)
                    out.append((p, "random"))
        elif not out:
            out.append(({}, "random"))
        return out

    def _estimator(self, family, params, candidates: _Candidates):
        """A new estimator of ``family`` with the bank parameters ``params``: the given
        estimator's clone, or the registry's estimator."""
        extra = {"random_state": self.seed_, "task_type": self.task_type_}
        if self.n_jobs is not None:
            extra["n_jobs"] = 1
        if family in candidates.given:
            est = clone(candidates.given[family])
            keys = est.get_params()
            est.set_params(**{k: v for k, v in {**_decode(family, params), **extra}.items() if k in keys})
            return est
        return make_model(family, params, **extra)

    def _fit_many(self, estimators, data: _Rows, landscape=False):
        """Fit the estimators (val for early stopping) through joblib, so a
        ``joblib.parallel_backend`` (Dask's) spreads them; ``[(estimator, validation score
        (greater is better), landscape metrics or None)]`` in order."""
        jobs = [delayed(_fit_and_measure)(est, data.X, data.y, data.X_val, data.y_val, self.metric_,
                                          self.seed_ if landscape else None) for est in estimators]
        return Parallel(n_jobs=self.n_jobs if len(jobs) > 1 else 1)(jobs)

    def _micro(self, bank, candidates: _Candidates, family, nearest, data: _Rows) -> _SearchResult:
        """The search inside ``family``: its start configurations through ``GridSearchCV`` on the
        validation rows, until the budget (fits or seconds) is spent."""
        fits, seconds = _parse_budget(self.budget)
        configs = self._start_configs(bank, family, candidates, nearest)
        if fits is not None:
            configs = configs[:fits]
        X_all = _concat(data.X, data.X_val)
        y_all = np.concatenate([data.y, data.y_val])
        fold = np.r_[np.full(len(data.X), -1), np.zeros(len(data.X_val), dtype=int)]
        base = self._estimator(family, {}, candidates)
        scorer = make_scorer(self.metric_)
        rows, t_start = [], time.perf_counter()
        # a time budget checks the clock between rounds of as many fits as run at once (under a
        # joblib backend such as Dask's, as many as the cluster's workers)
        chunk = max(1, effective_n_jobs(self.n_jobs)) if seconds is not None else len(configs)
        for start in range(0, len(configs), chunk):
            if seconds is not None and start > 0 and time.perf_counter() - t_start > seconds:
                break
            part = configs[start:start + chunk]
            grid = [{k: [v] for k, v in _decode(family, p).items()} for p, _ in part]
            grid = [g if g else {"random_state": [self.seed_]} for g in grid]
            search = GridSearchCV(base, grid, scoring=scorer, cv=PredefinedSplit(fold), refit=False,
                                  n_jobs=self.n_jobs, verbose=max(self.verbose - 1, 0), error_score=np.nan)
            search.fit(X_all, y_all)
            res = search.cv_results_
            for i, (p, source) in enumerate(part):
                rows.append({"family": family, "params": p, "source": source,
                             "val": float(self._in_metric_direction(res["mean_test_score"][i])),
                             "score": float(res["mean_test_score"][i]),
                             "fit_seconds": float(res["mean_fit_time"][i])})
        results = pd.DataFrame(rows)
        order = (-results["score"].fillna(-np.inf)).rank(method="first").astype(int)
        results.insert(4, "rank", order)
        self._log(f"searched {len(results)} configurations of {family}; best val "
                  f"{results['val'].iloc[order.argmin()]:.4f}")
        return _SearchResult(results, len(results))

    def _post_select(self, candidates: _Candidates, family, results, data: _Rows) -> _PostSelection:
        """Refit the top candidates by validation score (early-stopped on validation) and keep one:
        by the landscape vote when every one has a loss surface, else the best validation score.

        ``results`` are the search's (with the scorer's ``score``, greater is better); the returned
        ones have the ``landscape_*`` columns and ``selected``, without ``score``."""
        from .landscape import LandscapeRefit, has_loss_surface  # torch: loaded on first use

        finite = results[np.isfinite(results["score"])]
        if not len(finite):
            raise ValueError(f"Every candidate of {family} failed to fit; see the warnings above.")
        top = finite.sort_values("rank").head(self.top_k if self.post_selection else 1)
        no_surface = False
        if len(top) > 1:
            # the vote compares loss surfaces: only when every top-k learner has one (LightGBM has none;
            # then the best validation score is kept and the others are not refitted)
            if not all(has_loss_surface(self._estimator(family, p, candidates)) for p in top["params"]):
                logger.info("post-selection: %s has a top-%d candidate without a loss surface; keeping the best "
                            "validation score", family, len(top))
                no_surface = True
                top = top.head(1)
        vote = self.post_selection == "landscape" and len(top) > 1
        fits = self._fit_many([self._estimator(family, p, candidates) for p in top["params"]], data, landscape=vote)
        out = results.drop(columns="score")
        for k in _LANDSCAPE_COLUMNS:
            out[f"landscape_{k}"] = np.nan
        out["selected"] = False
        top_candidates = []
        for (idx, row), (est, score, land) in zip(top.iterrows(), fits):
            if land is not None:
                for k in _LANDSCAPE_COLUMNS:
                    out.loc[idx, f"landscape_{k}"] = land[k]
            top_candidates.append({"params": row["params"], "estimator": est, "val": self._in_metric_direction(score),
                                   "landscape": land})
        chosen = 0
        if len(fits) > 1:
            refit = LandscapeRefit(top_k=len(fits), weights=tuple(self.weights))
            chosen = refit.choose([score for _, score, _ in fits], [land for _, _, land in fits])
        out.loc[top.index[chosen], "selected"] = True
        if len(fits) > 1:
            note = f"landscape vote among the top {len(fits)}"
        elif no_surface:
            note = "best validation score (a top candidate has no loss surface)"
        else:
            note = "best validation score"
        return _PostSelection(top_candidates, chosen, out, note, len(fits))

    def _runner_up(self, bank, candidates: _Candidates, macro: _MacroChoice, nearest, data: _Rows):
        """The runner-up family's most promising configuration, fitted (None with one candidate)."""
        others = [f for f in candidates.families if f != macro.family]
        if macro.proba:
            others.sort(key=lambda f: -macro.proba.get(f, 0.0))
        if not others:
            return None
        params = self._start_configs(bank, others[0], candidates, nearest)[0][0]
        ((est, _, _),) = self._fit_many([self._estimator(others[0], params, candidates)], data)
        return est

    def _in_metric_direction(self, score):
        """A scorer's value (greater is better) in the metric's own direction (MAE positive)."""
        return score if METRICS[self.metric_].greater_is_better else -score

    # ------------------------------------------------------------------ predict
    def _predict_proba(self, X):
        check_is_fitted(self, "best_estimator_")
        return np.mean([m.predict_proba(X) for m in self.ensemble_members_], axis=0)

    def _predict_values(self, X):
        check_is_fitted(self, "best_estimator_")
        return np.mean([m.predict(X) for m in self.ensemble_members_], axis=0)

    def report(self, path, X_test=None, y_test=None):
        """Write the selection report (one self-contained HTML page) to ``path``; see
        :func:`skrel.relatron.report.write_report`."""
        from .report import write_report

        check_is_fitted(self, "best_estimator_")
        return write_report(self, path, X_test=X_test, y_test=y_test)


def _fit_and_measure(est, X, y, X_val, y_val, metric, landscape_seed):
    """Fit one candidate, score it on val and, given a seed, measure its loss landscape (a joblib job)."""
    from .landscape import landscape_metrics  # torch: only when a landscape is measured

    est.fit(X, y, X_val=X_val, y_val=y_val)
    val = make_scorer(metric)(est, X_val, y_val)
    land = None
    if landscape_seed is not None:
        land = landscape_metrics(est, X_val, y_val, grid=5, radius=0.5, probe_batches=2, hessian_iters=5,
                                 random_state=landscape_seed)
    return est, val, land


def _decode(family: str, params: dict) -> dict:
    """A stored (bank) configuration as estimator parameters, as the family decodes it
    (:attr:`~skrel.estimators.registry.FamilySpec.decode_params`; as stored for other names)."""
    spec = FAMILIES.get(family)
    if spec is None or spec.decode_params is None:
        return dict(params)
    return spec.decode_params(dict(params))


def _bank_path(bank) -> str:
    """The file a ``bank`` parameter names (the shipped bank for None)."""
    return str(BANK_PATH if bank is None else os.fspath(bank))


def _check_bank(bank, name: str) -> None:
    """Refuse a bank the selector cannot learn from, naming it (``name``) and what it lacks."""
    frame = bank.to_frame()
    if not len(frame):
        raise ValueError(f"{name} has no fits; build one with `skrel bank build` or PerformanceBank.extend.")
    if not bank.embedding_columns:
        raise ValueError(f"{name} has no '{EMB_PREFIX}' columns (task embeddings), so no bank task can be compared "
                         "with this one. Rebuild it with `skrel bank build` or PerformanceBank.extend, which "
                         "record them.")
    scores = frame[["val", "test"]].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(scores).all(axis=1).any():
        raise ValueError(f"{name} has no fit with both a val and a test score (all {len(frame)} lack one), so it "
                         "cannot say which family or configuration suits a task. Rebuild it with "
                         "`skrel bank build`.")


def _kind(task_type: str) -> str:
    return "regression" if task_type == "regression" else "classification"


def _concat(a: RelationalDataset, b: RelationalDataset) -> RelationalDataset:
    if a.entity_table != b.entity_table:
        raise ValueError(f"X and X_val are rows of different tables ({a.entity_table!r}, {b.entity_table!r}).")
    if a.db is not b.db and a.db.fingerprint != b.db.fingerprint:
        raise ValueError("X and X_val are over different databases; build both from the same Database.")
    return RelationalDataset(a.db, a.entity_table, np.concatenate([a.entity_ids, b.entity_ids]),
                             np.concatenate([a.cutoffs, b.cutoffs]))

