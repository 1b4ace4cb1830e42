"""An open performance bank: how every family's configurations did on many relational tasks.

Relatron's meta-selector learns which family suits a task from a bank of fitted configurations
(the paper's bank is private; this one is built in the open by ``skrel bank build`` and
ships with the package as ``skrel/relatron/bank.parquet``). One record per fit:

=====================  ===================================================================
column                 meaning
=====================  ===================================================================
``task_id``            ``"<dataset>/<task>"``, e.g. ``"f1/driver-dnf"``, ``"synthetic/h0.25-d1-binary-s0"``
``group``              tasks that must leave together in leave-one-out (one database, or one
                       generator seed of the synthetic family)
``source``             ``"real"`` or ``"synthetic"``
``task_type``          ``"binary"``, ``"multiclass"`` or ``"regression"``
``metric``             the task metric (a key of :data:`skrel.metrics.METRICS`)
``family``             a registry family name (``"dfs"``, ``"rdl"``...)
``config``             the configuration's index within its family for this task (0: defaults)
``params``             the estimator parameters, JSON (:func:`skrel.estimators.registry.make_model` builds the estimator)
``val``, ``test``,     the metric on the task's val split, on test under RelBench's protocol
``test_asof``          (X over the database cut at the test timestamp), and on test as-of (each
                       row sees everything up to its cutoff); in the metric's own direction
``fit_seconds``        wall seconds of ``fit(db, task)``
``peak_rss_mb``        the fitting process's resident-memory high-water mark so far
``landscape_<m>``      loss-landscape metrics ``p1``, ``p2``, ``barrier``, ``flatness``,
                       ``hessian_top`` on val rows (NaN where the learner has no loss surface)
``emb:<entry>``        the task embedding (:func:`~skrel.relatron.task_embedding`), one
                       column per entry, NaN where a task has no such entry
``bank_version``,      schema version (:data:`BANK_VERSION`), the skrel version and the processor
``skrel_version``,     the record was made with
``machine``
=====================  ===================================================================

The bank's configurations are trained under a budget (:data:`BANK_BUDGET`: few epochs, few steps
per epoch), so that dozens of fits per task fit on two cores: its scores rank families *at that
budget*, which is the budget the selector searches with, not their best possible scores.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..estimators.registry import family_names, get_spec, make_model

__all__ = ["PerformanceBank", "BANK_VERSION", "BANK_PATH", "BANK_BUDGET", "bank_config_counts", "LANDSCAPE_KEYS",
           "EMB_PREFIX", "bank_configurations", "fit_records"]

logger = logging.getLogger(__name__)

BANK_VERSION = 1
BANK_PATH = Path(__file__).with_name("bank.parquet")
EMB_PREFIX = "emb:"
LANDSCAPE_KEYS = ("p1", "p2", "barrier", "flatness", "hessian_top")
#: caps applied to every torch configuration of the bank (and of the selector's search by default)
BANK_BUDGET = {"max_epochs": 8, "max_steps_per_epoch": 10, "batch_size": 128}
_META = ["task_id", "group", "source", "task_type", "metric", "family", "config", "params", "seed",
         "val", "test", "test_asof", "fit_seconds", "peak_rss_mb"]


# ------------------------------------------------------------------------ configurations
def bank_config_counts(families=None) -> dict[str, int]:
    """Configurations per task of each family in the bank (:attr:`FamilySpec.bank_configs`; the
    first is the family's defaults): every registered family by default.

    Raises
    ------
    ValueError
        A name in ``families`` is not a registered family (listing the registered ones).
    """
    names = family_names() if families is None else list(families)
    return {name: get_spec(name).bank_configs for name in names}


def _jsonable(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def bank_configurations(family: str, n: int, random_state: int = 0, budget: dict | None = None) -> list[dict]:
    """The family's defaults, then ``n - 1`` configurations drawn from its registry search space.

    Parameters
    ----------
    family : str
        A registry family name.
    n : int
        Number of configurations.
    random_state : int, default=0
        Seed of :class:`~sklearn.model_selection.ParameterSampler`; the same seed gives the same list.
    budget : dict, optional
        Caps for torch families (default :data:`BANK_BUDGET`): ``max_epochs`` is lowered to the
        cap, ``max_steps_per_epoch`` and ``batch_size`` set. Each configuration is then stored as
        the family's :attr:`~skrel.estimators.registry.FamilySpec.bank_params` says (DFS: a
        neural learner as its ``TorchFrameLearner`` settings); :func:`~skrel.estimators.registry.make_model`
        builds the estimator back from it.

    Returns
    -------
    list of dict
        JSON-serialisable parameter dicts; ``[{}]`` plus caps for ``n=1``.

    Examples
    --------
    >>> bank_configurations("rdl", 2)[0]
    {'max_epochs': 8, 'max_steps_per_epoch': 10, 'batch_size': 128}
    """
    from sklearn.model_selection import ParameterSampler

    spec = get_spec(family)
    budget = BANK_BUDGET if budget is None else budget
    configs = [{}]
    if n > 1 and spec.search_space:
        configs += list(ParameterSampler(spec.search_space, n_iter=4 * n, random_state=random_state))
    out, seen = [], set()
    for params in configs:
        params = _jsonable(dict(params))
        if spec.torch:
            cap = budget.get("max_epochs")
            if cap is not None:
                params["max_epochs"] = min(int(params.get("max_epochs", cap)), int(cap))
            for key in ("max_steps_per_epoch", "batch_size"):
                if budget.get(key) is not None:
                    params[key] = int(budget[key])
        if spec.bank_params is not None:
            params = spec.bank_params(params)
        key = json.dumps(params, sort_keys=True)
        if key not in seen:  # a draw can repeat an earlier one (or the defaults): keep each once
            seen.add(key)
            out.append(params)
        if len(out) == n:
            break
    return out


# ------------------------------------------------------------------------ fitting
def _landscape(est, X, y) -> dict:
    from .landscape import has_loss_surface, landscape_metrics

    if not has_loss_surface(est):
        return {f"landscape_{k}": np.nan for k in LANDSCAPE_KEYS}
    m = landscape_metrics(est, X, y, grid=5, radius=0.5, probe_batches=2, hessian_iters=5, random_state=0)
    return {f"landscape_{k}": float(m[k]) for k in LANDSCAPE_KEYS}


def fit_records(db, task, *, task_id: str, group: str, source: str, embedding: dict,
                configs: dict[str, list[dict]], seed: int = 0, landscape: bool = True, skip=(),
                on_record=None, n_jobs: int | None = 1, progress=None) -> list[dict]:
    """Fit every configuration on ``task`` and return one bank record per fit.

    Parameters
    ----------
    db, task : Database, Task
    task_id, group, source : str
        The record's identity (see the module docstring).
    embedding : dict
        The task's embedding (name -> float), stored as ``emb:`` columns.
    configs : dict of str to list of dict
        ``{family: [params, ...]}``, e.g. from :func:`bank_configurations`.
    seed : int, default=0
        ``random_state`` of every fit.
    landscape : bool, default=True
        Compute the landscape metrics of fits that have a loss surface (a 5x5 grid on two probe
        batches of val rows, five power iterations: a few seconds each).
    skip : collection of (family, config) pairs
        Fits already done (resuming).
    on_record : callable, optional
        Called with each record as soon as it exists (e.g. to append it to a file).
    n_jobs : int or None, default=1
        Threads of each fit (``n_jobs`` of the estimator).
    progress : tqdm bar, optional
        Advanced once per fit.

    Returns
    -------
    list of dict
    """
    import skrel

    from ..metrics import evaluate
    from ..utils import cpu_model, peak_rss_mb

    splits = {s: task.split(db, s) for s in ("val", "test", "test_asof")}
    records = []
    for family, plist in configs.items():
        for i, params in enumerate(plist):
            if (family, i) in skip:
                if progress is not None:
                    progress.update(1)
                continue
            est = make_model(family, params, random_state=seed, n_jobs=n_jobs)
            t0 = time.perf_counter()
            est.fit(db, task)
            seconds = time.perf_counter() - t0
            rec = {"task_id": task_id, "group": group, "source": source, "task_type": task.task_type,
                   "metric": task.metric, "family": family, "config": i, "params": json.dumps(params, sort_keys=True),
                   "seed": int(seed), "fit_seconds": round(seconds, 3)}
            for split, (X, y) in splits.items():
                rec[split] = evaluate(est, X, y, task.metric) if len(y) else np.nan
            rec["peak_rss_mb"] = round(peak_rss_mb(), 1)
            rec.update(_landscape(est, *splits["val"]) if landscape else
                       {f"landscape_{k}": np.nan for k in LANDSCAPE_KEYS})
            rec.update({f"{EMB_PREFIX}{k}": float(v) for k, v in embedding.items()})
            rec.update(bank_version=BANK_VERSION, skrel_version=skrel.__version__, machine=cpu_model())
            logger.info("bank %s %s#%d: val %.4f test %.4f (%.1fs)", task_id, family, i, rec["val"], rec["test"],
                        seconds)
            records.append(rec)
            if on_record is not None:
                on_record(rec)
            if progress is not None:
                progress.update(1)
    return records


# ------------------------------------------------------------------------ the bank
class PerformanceBank:
    """Records of fitted configurations on many tasks, and what they say about family choice.

    Parameters
    ----------
    records : pandas.DataFrame, optional
        One row per fit, in the schema of the module docstring; empty by default.

    Examples
    --------
    >>> bank = PerformanceBank.load()                 # the bank shipped with skrel  # doctest: +SKIP
    >>> bank.tasks()[["task_id", "best_family"]]      # doctest: +SKIP
    >>> bank.extend(db, task, task_id="mine/churn")   # add your own task  # doctest: +SKIP
    """

    def __init__(self, records: pd.DataFrame | None = None):
        if records is None:
            records = pd.DataFrame({c: pd.Series(dtype=object) for c in _META})
        missing = sorted(set(_META) - set(records.columns))
        if missing:
            raise ValueError(f"Bank records lack column(s) {missing}; see skrel.relatron.bank's schema.")
        self._records = records.reset_index(drop=True)

    # ---------------------------------------------------------------- io
    @classmethod
    def load(cls, path=None) -> "PerformanceBank":
        """Read a bank from parquet (``path``; the bank shipped with skrel by default).

        Raises
        ------
        FileNotFoundError
            No file at ``path`` (for the shipped bank: the package was installed without it).
        IsADirectoryError
            ``path`` is a directory (a bank is one parquet file, as :meth:`save` writes).
        ValueError
            The file is not readable parquet (damaged, or another format), lacks the bank's
            columns, or its ``bank_version`` is not :data:`BANK_VERSION`.
        """
        path = Path(BANK_PATH if path is None else path)
        if not path.exists():
            raise FileNotFoundError(f"No performance bank at {path}; build one with `skrel bank build` (or "
                                    "`skrel bank extend --empty` for a task of yours, PerformanceBank().extend(db, task) "
                                    "from Python).")
        if path.is_dir():
            # pandas would read a directory as a dataset of every parquet file below it
            raise IsADirectoryError(f"The performance bank {path} is a directory; pass the path of one bank parquet "
                                    "file (as PerformanceBank.save writes).")
        try:
            records = pd.read_parquet(path)
        except PermissionError:
            raise
        except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError, a bad footer an OSError
            raise ValueError(f"Could not read the performance bank {path} as parquet ({str(err).strip()}). The file "
                             "is damaged or not a bank: rebuild it with `skrel bank build`, or pass another "
                             "bank.") from err
        missing = sorted(set(_META) - set(records.columns))
        if missing:
            raise ValueError(f"{path} is not a performance bank: it lacks column(s) {missing} (see "
                             "skrel.relatron.bank's schema). Pass a bank built by `skrel bank build`.")
        versions = set(records["bank_version"].dropna().astype(int)) if "bank_version" in records else {None}
        if versions - {BANK_VERSION}:
            raise ValueError(f"Bank {path} has schema version(s) {sorted(versions, key=str)}; this skrel reads "
                             f"version {BANK_VERSION}. Rebuild it with `skrel bank build`.")
        return cls(records)

    def save(self, path) -> Path:
        """Write the bank to ``path`` as parquet and return the path."""
        path = Path(path)
        self._records.to_parquet(path, index=False)
        return path

    def to_frame(self) -> pd.DataFrame:
        """A copy of the records, one row per fit."""
        return self._records.copy()

    def __len__(self) -> int:
        return len(self._records)

    def __repr__(self) -> str:
        return f"PerformanceBank({self._records['task_id'].nunique()} tasks, {len(self)} fits)"

    @property
    def embedding_columns(self) -> list[str]:
        """The ``emb:`` columns, in order."""
        return [c for c in self._records.columns if c.startswith(EMB_PREFIX)]

    # ---------------------------------------------------------------- what it says
    def family_scores(self, budget: int | None = None, protocol: str = "test") -> pd.DataFrame:
        """Per task and family, the ``protocol`` score of the configuration with the best val score
        among the family's first ``budget`` configurations (all when None), in the metric's own
        direction. Rows: task ids; columns: families (NaN where a family has no fit)."""
        from ..metrics import METRICS

        if protocol not in ("val", "test", "test_asof"):
            raise ValueError(f"protocol must be 'val', 'test' or 'test_asof', got {protocol!r}.")
        r = self._records
        if budget is not None:
            r = r[r["config"] < budget]
        sign = r["metric"].map(lambda m: 1.0 if METRICS[m].greater_is_better else -1.0)
        r = r.assign(_v=sign * r["val"].astype(float)).sort_values(["task_id", "family", "_v", "config"],
                                                                     ascending=[True, True, False, True])
        best = r.groupby(["task_id", "family"], sort=True).head(1)
        return best.pivot(index="task_id", columns="family", values=protocol)

    def best_family(self, budget: int | None = None, protocol: str = "test", families=None) -> pd.Series:
        """The family whose validation-chosen configuration scores best on ``protocol``, per task
        (budget-aware: only each family's first ``budget`` configurations compete; only
        ``families`` when given). Tasks where none of them has a fit are left out."""
        from ..metrics import METRICS

        scores = self.family_scores(budget, protocol)
        if families is not None:
            scores = scores.reindex(columns=[f for f in families if f in scores.columns])
        scores = scores.dropna(how="all")
        metric = self._records.groupby("task_id")["metric"].first()
        sign = metric.reindex(scores.index).map(lambda m: 1.0 if METRICS[m].greater_is_better else -1.0)
        signed = scores.mul(sign, axis=0)
        return signed.idxmax(axis=1).rename("best_family")

    def tasks(self, budget: int | None = None, protocol: str = "test") -> pd.DataFrame:
        """One row per task: ``task_id``, ``group``, ``source``, ``task_type``, ``metric``,
        ``n_fits``, ``best_family`` (:meth:`best_family`) and the ``emb:`` columns."""
        r = self._records
        first = r.groupby("task_id", sort=True).first()
        out = first[["group", "source", "task_type", "metric", *self.embedding_columns]].copy()
        out.insert(4, "n_fits", r.groupby("task_id").size())
        out.insert(5, "best_family", self.best_family(budget, protocol))
        return out.reset_index()

    def configurations(self, task_ids, family: str, top: int = 3) -> list[dict]:
        """The ``top`` best configurations (by val) of ``family`` on each of ``task_ids``, in the
        order given, without repeats: the starting points of a search on a similar task."""
        from ..metrics import METRICS

        r = self._records[self._records["family"] == family]
        out, seen = [], set()
        for tid in task_ids:
            rows = r[r["task_id"] == tid]
            if not len(rows):
                continue
            sign = 1.0 if METRICS[rows["metric"].iloc[0]].greater_is_better else -1.0
            rows = rows.assign(_v=sign * rows["val"].astype(float)).sort_values(["_v", "config"],
                                                                                ascending=[False, True])
            for p in rows["params"].head(top):
                if p not in seen:
                    seen.add(p)
                    out.append(json.loads(p))
        return out

    # ---------------------------------------------------------------- growing it
    def extend(self, db, task, *, task_id: str | None = None, group: str | None = None, source: str = "real",
               families=None, budget: dict | int | None = None, configs: dict | None = None, seeds=(0,),
               random_state: int = 0, landscape: bool = True, n_jobs: int | None = 1,
               verbose: int = 0) -> "PerformanceBank":
        """Fit the bank's configurations on a task of your own and add the records.

        Parameters
        ----------
        db, task : Database, Task
        task_id : str, optional
            Default ``"user/<task name>"``; an id already in the bank raises ValueError.
        group : str, optional
            Leave-one-out group; default the part of ``task_id`` before the last ``/``.
        source : str, default="real"
        families : list of str, optional
            Registered family names (an unknown one is a ValueError listing the registered ones);
            default: every registered family.
        budget : int or dict, optional
            Configurations per family: an int for every family, a dict per family, or each
            family's :attr:`~skrel.estimators.registry.FamilySpec.bank_configs` by default.
        configs : dict of str to list of dict, optional
            Explicit configurations per family (bank parameter dicts), instead of drawing
            ``budget`` of them; its keys are the families.
        seeds : sequence of int, default=(0,)
            One fit per configuration and seed.
        random_state : int, default=0
            Seed of the configuration draw and of the task embedding.
        landscape : bool, default=True
        n_jobs : int or None, default=1
            Threads of each fit.
        verbose : int, default=0
            1 shows a progress bar over fits.

        Returns
        -------
        self
        """
        from tqdm.auto import tqdm

        from .embedding import task_embedding

        task_id = task_id or f"user/{task.name}"
        if task_id in set(self._records["task_id"]):
            raise ValueError(f"Task id {task_id!r} is already in the bank; pass another task_id=.")
        group = group or task_id.rsplit("/", 1)[0]
        if configs is None:
            counts = bank_config_counts(families)  # an unknown family name is a ValueError naming it
            if isinstance(budget, int):
                budget = {f: budget for f in counts}
            budget = {**counts, **(budget or {})}
            unknown = sorted(set(budget) - set(counts))
            if unknown:
                raise ValueError(f"budget names famil(ies) {unknown} that are not being fitted ({sorted(counts)}).")
            configs = {f: bank_configurations(f, budget[f], random_state) for f in counts}
        else:
            bank_config_counts(configs)  # the keys must be registered families
            configs = {f: [dict(p) for p in plist] for f, plist in configs.items()}
        emb = task_embedding(db, task, random_state=random_state, n_jobs=n_jobs)
        total = sum(len(v) for v in configs.values()) * len(seeds)
        with tqdm(total=total, desc=f"bank {task_id}", disable=not verbose) as bar:
            new = []
            for seed in seeds:
                new += fit_records(db, task, task_id=task_id, group=group, source=source, embedding=emb,
                                   configs=configs, seed=seed, landscape=landscape, n_jobs=n_jobs, progress=bar)
        frame = pd.DataFrame(new)
        self._records = pd.concat([self._records, frame], ignore_index=True) if len(self._records) else frame
        return self
