"""The torch families' shared base: one training loop, on skorch.

:class:`TorchRelationalEstimator` owns what RDL, RelGT and any later torch family share: device
choice (CUDA falls back to the CPU with a warning), seeding, the thread count (``n_jobs``), the
training loop (a skorch :class:`~skorch.NeuralNet`), one validation record that is always
higher-is-better (``validation_scores_``, ``best_score_``), best-epoch restore, prediction,
``embed`` and pickling. A family keeps only its module and its batch construction::

    class MyFamily(TorchRelationalEstimator):
        def _prepare(self, X, y): ...            # fit-time state (feature spec, module kwargs)
        def _new_module(self, kwargs): ...       # the torch module, from self._module_kwargs
        def _make_loader(self, X, y=None, *, train=False): ...   # batches of X's rows

A loader is re-iterable (one pass per epoch); its batches have ``batch.to(device)`` and
``batch.y``; ``set_epoch(epoch)`` is called before each training epoch when it exists (so the
loader can reshuffle deterministically), and ``order()``, when it exists, gives the row of each
output of an evaluation pass. The module is called as ``module(batch) -> raw outputs`` and has
``module.loss(raw, y)``, ``module.embed(batch)`` and ``module.head.transform(raw)``.

The training machinery itself (device, validation record, skorch net, early stopping, history,
pickling) is :class:`TorchTrainer`, a mixin that any estimator training one torch module can
share: :class:`~skrel.estimators._neural_tabular.TorchFrameLearner` (DFS's neural learners over a
feature matrix) trains through it too.

How skorch is used (``fit`` is skorch's chain: initialize, fit_loop, run_single_epoch,
train_step): :class:`RelationalNet` takes our loaders as its datasets and iterators (skorch's
own ``Dataset``/``DataLoader`` would re-collate rows that our samplers already batched), the
validation loader arrives through ``train_split=predefined_split(...)``, the validation score is
an :class:`~skorch.callbacks.EpochScoring` over the cached validation predictions, early stopping
and best-epoch restore are :class:`~skorch.callbacks.EarlyStopping`, gradient clipping is
:class:`~skorch.callbacks.GradientNormClipping`, progress is :class:`~skorch.callbacks.ProgressBar`
(tqdm) and the epoch log goes to :mod:`logging`. Users add any skorch callback (``LRScheduler``,
``Checkpoint``, ...) through ``callbacks``.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import time
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from ..utils import default_memory_limit, import_optional, parse_memory, seed_from

# the torch extra, checked once for every torch family: one ImportError naming it
for _module in ("torch", "skorch", "torch_frame"):
    import_optional(_module, "skrel's torch families (RDLEstimator, RelGTEstimator, DFS's neural learners)")

import torch  # noqa: E402
from skorch import NeuralNet  # noqa: E402
from skorch import callbacks as cbs  # noqa: E402
from skorch.helper import predefined_split  # noqa: E402

from ._base import RelationalEstimator, check_relational_X, logger, resolve_fit_input  # noqa: E402

__all__ = ["TorchRelationalEstimator", "TorchTrainer", "RelationalNet", "ModuleLoss", "Batches", "predict_raw",
           "torch_threads", "activation_bytes", "AUTO_BATCH_CAP", "PROBE_ROWS", "STEP_FACTOR"]


#: The training parameters every torch learner shares (the vocabulary of docs/parameters.md).
TRAINING_CONSTRAINTS = {
    "channels": [Interval(Integral, 2, None, closed="left")],
    "dropout": [Interval(Real, 0, 1, closed="left")],
    "lr": [Interval(Real, 0, None, closed="neither")],
    "weight_decay": [Interval(Real, 0, None, closed="left")],
    "max_epochs": [Interval(Integral, 1, None, closed="left")],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "gradient_clip_value": [Interval(Real, 0, None, closed="neither"), None],
    "callbacks": [list, tuple, None],
    "device": [str],
}


# ---------------------------------------------------------------------------- skorch plumbing
class _Rows:
    """A batch as skorch sees it: skorch asks a batch for its length (rows) to weight losses."""

    __slots__ = ("batch", "n")

    def __init__(self, batch, n: int):
        self.batch = batch
        self.n = n

    def __len__(self) -> int:
        return self.n


class Batches:
    """A loader as skorch's dataset and iterator: yields ``(rows, y)`` pairs, at most ``max_steps``
    per pass, and forwards ``set_epoch``."""

    def __init__(self, loader, max_steps: int | None = None):
        self.loader = loader
        self.max_steps = max_steps

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.loader, "set_epoch"):
            self.loader.set_epoch(epoch)

    def __len__(self) -> int:
        """Batches per pass (skorch's progress bar asks for it)."""
        n = len(self.loader)
        return n if self.max_steps is None else min(n, self.max_steps)

    def __iter__(self):
        it = iter(self.loader)
        if self.max_steps is not None:
            it = itertools.islice(it, self.max_steps)
        for batch in it:
            y = batch.y
            yield _Rows(batch, 0 if y is None else int(y.shape[0])), y


class RelationalNet(NeuralNet):
    """skorch's :class:`~skorch.NeuralNet` over relational batch loaders.

    ``fit(Batches(train_loader))`` trains; the validation loader comes from
    ``train_split=skorch.helper.predefined_split(Batches(val_loader))``; the criterion is the
    module's own loss (:class:`ModuleLoss`). Only the data plumbing is overridden: skorch's loop,
    optimizer handling, history and callbacks run as they are.
    """

    def get_dataset(self, X, y=None):
        return X

    def get_iterator(self, dataset, training=False):
        return dataset

    def infer(self, x, **fit_params):
        batch = x.batch if isinstance(x, _Rows) else x
        return self.module_(batch.to(self.device), **fit_params)

    def get_default_callbacks(self):
        out = [("epoch_timer", cbs.EpochTimer()),
               ("train_loss", cbs.PassthroughScoring(name="train_loss", on_train=True)),
               ("valid_loss", cbs.PassthroughScoring(name="valid_loss"))]
        if self.verbose:
            out.append(("print_log", cbs.PrintLog(sink=logger.info)))
        return out


class ModuleLoss(torch.nn.Module):
    """The criterion skorch calls: the network's own ``loss(raw, y)`` (holds no parameters)."""

    def __init__(self, loss_fn):
        super().__init__()
        self.loss_fn = loss_fn

    def forward(self, raw, y):
        return self.loss_fn(raw, y)


class LoaderEpoch(cbs.Callback):
    """Tell the training loader which epoch starts (deterministic reshuffling per epoch)."""

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        if hasattr(dataset_train, "set_epoch"):
            dataset_train.set_epoch(len(net.history) - 1)


class TrainClock(cbs.Callback):
    """Record ``train_seconds`` (wall) and ``train_cpu_seconds`` (process CPU, all threads) of the
    training pass of each epoch, validation excluded."""

    def on_epoch_begin(self, net, **kwargs):
        self._t0, self._c0, self._open = time.perf_counter(), time.process_time(), True

    def _close(self, net):
        if self._open:
            net.history.record("train_seconds", time.perf_counter() - self._t0)
            net.history.record("train_cpu_seconds", time.process_time() - self._c0)
            self._open = False

    def on_batch_begin(self, net, training=False, **kwargs):
        if not training:
            self._close(net)

    def on_epoch_end(self, net, **kwargs):
        self._close(net)


@contextlib.contextmanager
def torch_threads(n_jobs):
    """Run the block with ``n_jobs`` torch intra-op threads (``None``: leave torch's setting)."""
    if n_jobs is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(n_jobs))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def predict_raw(module, loader, device="cpu"):
    """``module(batch)`` over ``loader`` in eval mode, concatenated on the CPU, in the rows' order
    (``loader.order()`` when the loader visits rows in another order)."""
    module.eval()
    outs = []
    with torch.no_grad():
        for batch in loader:
            outs.append(module(batch.to(device)).to("cpu"))
    raw = torch.cat(outs) if outs else torch.zeros(0)
    order = getattr(loader, "order", None)
    if order is not None:
        out = torch.empty_like(raw)
        out[torch.from_numpy(np.asarray(order()))] = raw
        raw = out
    return raw


#: ``batch_size="auto"``'s largest batch (RelBench's batch size) and the rows of its probe.
AUTO_BATCH_CAP = 512
PROBE_ROWS = 64
#: A training step's peak memory per byte of :func:`activation_bytes`: the backward pass holds the
#: gradients of the activations next to them (measured on ``wide`` at 230 rows a batch: 1.2).
STEP_FACTOR = 1.25


def activation_bytes(estimator, loader) -> int:
    """Bytes of the tensors a training forward pass keeps for the backward pass, over ``loader``'s
    first batch: a fresh module of ``estimator`` (seeded from ``seed_``, global random state
    untouched), in training mode, on the CPU.

    Counted once per storage, parameters excluded: the activations, dropout masks and input
    features that grow with the batch. A training step's peak above what the process held
    before is about :data:`STEP_FACTOR` times the count (rows of a batch share nodes, so the
    count per row of a small probe is, if anything, high for a larger batch).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(estimator.seed_)
        module = estimator._new_module(estimator._module_kwargs).train()
        params = {p.untyped_storage().data_ptr() for p in module.parameters()}
        saved = {}

        def pack(t):
            storage = t.untyped_storage()
            if storage.data_ptr() not in params:
                saved[storage.data_ptr()] = storage.nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            module(next(iter(loader)).to("cpu"))
    return int(sum(saved.values()))


# ---------------------------------------------------------------------------- the training contract
class TorchTrainer:
    """The shared torch training machinery, for any estimator that trains one torch module.

    :class:`TorchRelationalEstimator` (over relational rows) and
    :class:`~skrel.estimators._neural_tabular.TorchFrameLearner` (over a feature matrix) both
    train through it: one skorch loop (:class:`RelationalNet`), one validation record (higher is
    better), early stopping with best-epoch restore, one pickling scheme.

    A subclass has the parameters ``lr``, ``weight_decay``, ``max_epochs``, ``batch_size``,
    ``n_iter_no_change``, ``gradient_clip_value``, ``callbacks``, ``device`` and ``verbose``;
    sets ``seed_``, ``task_type_`` and ``_module_kwargs`` before training; and implements
    ``_new_module(kwargs)`` (the module, rebuilt from ``_module_kwargs`` when unpickling). Its
    loaders' batches have ``batch.to(device)`` and ``batch.y``, and its module has
    ``loss(raw, y)`` and ``head.transform(raw)``.
    """

    def _prediction_input(self, X):  # pragma: no cover - abstract
        """Check ``X`` at prediction time and return what ``_make_loader`` takes."""
        raise NotImplementedError

    def _raw(self, X) -> torch.Tensor:
        """The fitted module's raw outputs for ``X``, on the chosen device, in ``n_jobs`` threads."""
        check_is_fitted(self, "module_")
        X = self._prediction_input(X)
        device = self._torch_device()
        with torch_threads(self.n_jobs):
            module = self.module_.to(device)
            try:
                return predict_raw(module, self._make_loader(X), device)
            finally:
                self.module_ = module.to("cpu")

    def _torch_device(self):
        device = torch.device(self.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            warnings.warn(f"device={self.device!r} but CUDA is not available; using the CPU.", stacklevel=3)
            device = torch.device("cpu")
        return device

    def _batch_size(self) -> int:
        """Rows per batch: the fitted ``batch_size_`` (``batch_size="auto"`` resolved), else ``batch_size``."""
        return getattr(self, "batch_size_", self.batch_size)

    def _train_batch_size(self, n_rows: int) -> int:
        """The batch size, smaller when the training set is too small for ``min_steps_per_epoch`` steps."""
        if self.min_steps_per_epoch:
            return max(1, min(self._batch_size(), -(-n_rows // self.min_steps_per_epoch)))
        return self._batch_size()

    def _target(self, y):
        if y is None:
            return None
        return y.astype(np.int64) if self.task_type_ == "multiclass" else y.astype(np.float32)

    def _head_kwargs(self, y) -> dict:
        """The regression head's clamp range, offset and scale from the training targets, robust to
        ties (:func:`skrel.nn.heads.regression_target_stats`); nothing for classification."""
        if self.task_type_ != "regression":
            return {}
        from ..nn.heads import regression_target_stats

        s = regression_target_stats(y)
        return {"clamp": s["clamp"], "target_loc": s["loc"], "target_scale": s["scale"]}

    def _validation_score(self, module, raw, y) -> float:
        """The validation record of ``module``'s raw outputs, higher is better (class docstring)."""
        from sklearn.metrics import roc_auc_score

        y = np.asarray(y)
        if self.task_type_ == "binary":
            if len(np.unique(y)) < 2:
                return -float(module.loss(raw, torch.as_tensor(y)))
            return float(roc_auc_score(y, raw.double().numpy()))
        if self.task_type_ == "regression":
            return -float(np.mean(np.abs(module.head.transform(raw) - y)))
        return float(np.mean(raw.argmax(1).numpy() == y))

    def _make_net(self, module, device, valid):
        callbacks = [("loader_epoch", LoaderEpoch()), ("train_clock", TrainClock())]
        if valid is not None:
            def score(net, X, y):
                return self._validation_score(net.module_, net.forward(X), y)

            patience = self.n_iter_no_change if self.n_iter_no_change is not None else self.max_epochs + 1
            callbacks += [
                ("valid_score", cbs.EpochScoring(score, lower_is_better=False, on_train=False, use_caching=True,
                                                 name="valid_score")),
                ("early_stopping", cbs.EarlyStopping(monitor="valid_score", lower_is_better=False, patience=patience,
                                                     threshold=0.0, threshold_mode="abs", load_best=True,
                                                     sink=logger.info)),
            ]
        if self.gradient_clip_value is not None:
            callbacks.append(("gradient_clip", cbs.GradientNormClipping(self.gradient_clip_value)))
        if self.verbose:
            callbacks.append(("progress", cbs.ProgressBar()))
        callbacks += list(self.callbacks or [])
        return RelationalNet(
            module=module, criterion=ModuleLoss(module.loss), optimizer=torch.optim.Adam, lr=self.lr,
            optimizer__weight_decay=self.weight_decay, max_epochs=self.max_epochs, batch_size=self._batch_size(),
            train_split=None if valid is None else predefined_split(valid), callbacks=callbacks,
            device=str(device), verbose=int(self.verbose),
        )

    def _initial_module(self):
        """A new module from ``_module_kwargs`` with the weights training starts from (drawn from
        ``seed_``; the caller forks torch's random state)."""
        torch.manual_seed(self.seed_)
        return self._new_module(self._module_kwargs)

    def _train_net(self, train, valid, device, describe: str = ""):
        """Build the module (seeded from ``seed_``) and train it on ``train`` (a :class:`Batches`),
        validating on ``valid`` (a :class:`Batches` or None).

        Sets ``module_`` (on the CPU, eval mode), ``n_params_``, ``history_``,
        ``validation_scores_``, ``best_epoch_`` and ``best_score_``; returns the skorch net.
        """
        devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            module = self._initial_module()
            self.n_params_ = int(sum(p.numel() for p in module.parameters()))
            message = f"{type(module).__name__} with {self.n_params_} parameters: {describe}"
            if hasattr(self, "_log"):
                self._log(message)
            elif self.verbose:
                logger.info("[%s] %s", type(self).__name__, message)
            net = self._make_net(module, device, valid)
            net.fit(train)
        self.module_ = net.module_.to("cpu").eval()
        self._record_history(net, has_valid=valid is not None)
        return net

    def _record_history(self, net, has_valid: bool) -> None:
        self.history_ = [
            {"epoch": h["epoch"] - 1, "train_loss": h.get("train_loss"), "valid_loss": h.get("valid_loss"),
             "valid_score": h.get("valid_score"), "steps": h.get("train_batch_count"), "seconds": h.get("dur"),
             "train_seconds": h.get("train_seconds"), "train_cpu_seconds": h.get("train_cpu_seconds")}
            for h in net.history
        ]
        self.validation_scores_ = [h["valid_score"] for h in self.history_] if has_valid else []
        if has_valid and self.history_:
            stopper = dict(net.callbacks_)["early_stopping"]
            self.best_epoch_ = int(stopper.best_epoch_) - 1
            self.best_score_ = self.history_[self.best_epoch_]["valid_score"] if self.best_epoch_ >= 0 else None
        else:
            self.best_epoch_ = len(self.history_) - 1
            self.best_score_ = None

    # ------------------------------------------------------------------ pickling
    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: object.__getstate__ may hand out __dict__ itself
        module = state.pop("module_", None)
        if module is not None:
            buf = io.BytesIO()
            torch.save(module.state_dict(), buf)
            state["_module_state"] = buf.getvalue()
        return state

    def __setstate__(self, state):
        blob = state.pop("_module_state", None)
        super().__setstate__(state)
        if blob is not None:
            with torch.random.fork_rng(devices=[]):
                module = self._new_module(self._module_kwargs)
            module.load_state_dict(torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True))
            self.module_ = module.eval()


# ---------------------------------------------------------------------------- the estimator
class TorchRelationalEstimator(TorchTrainer, RelationalEstimator):
    """Base of the torch families (see the module docstring for what a family implements).

    Fitted attributes it sets: ``module_`` (on the CPU, eval mode), ``seed_``, ``history_`` (per
    epoch: ``epoch``, ``train_loss``, ``valid_loss``, ``valid_score``, ``steps``, ``seconds``,
    ``train_seconds``, ``train_cpu_seconds``), ``validation_scores_`` (per epoch, higher is better:
    AUROC for binary, accuracy for multiclass, minus MAE for regression; with a single class in the
    validation rows, minus the validation loss), ``best_epoch_`` (0-based), ``best_score_`` (None
    without validation rows), ``n_params_``, ``steps_per_epoch_`` (optimizer steps of a training
    epoch).
    """

    _parameter_constraints = {
        **RelationalEstimator._parameter_constraints,
        **TRAINING_CONSTRAINTS,
        "num_layers": [Interval(Integral, 0, None, closed="left")],
        "encoder_layers": [Interval(Integral, 0, None, closed="left")],
        "max_steps_per_epoch": [Interval(Integral, 1, None, closed="left"), None],
        "min_steps_per_epoch": [Interval(Integral, 1, None, closed="left"), None],
        "text_embedder": [callable, None],
        "stypes": [dict, None],
    }

    # ------------------------------------------------------------------ what a family implements
    def _prepare(self, X, y) -> None:  # pragma: no cover - abstract
        """Fit-time state from the training rows: set ``self._module_kwargs`` (and e.g. ``spec_``)."""
        raise NotImplementedError

    def _new_module(self, kwargs: dict):  # pragma: no cover - abstract
        raise NotImplementedError

    def _make_loader(self, X, y=None, *, train: bool = False):  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------ fit
    def _fit(self, X, y, X_val, y_val):
        device = self._torch_device()
        with torch_threads(self.n_jobs):
            self._set_up(X, y)
            train = Batches(self._make_loader(X, self._target(y), train=True), self.max_steps_per_epoch)
            self.steps_per_epoch_ = len(train)
            valid = None if X_val is None else Batches(self._make_loader(X_val, self._target(y_val)))
            self._train_net(train, valid, device, f"training on {len(X)} rows"
                            + ("" if X_val is None else f", validating on {len(X_val)}"))
        return self

    def _set_up(self, X, y) -> None:
        """What ``fit`` sets before training: ``seed_``, ``entity_table_``, the family's state
        (:meth:`_prepare`) and ``batch_size_``; ``y`` is encoded (``task_type_`` is set)."""
        self.seed_ = seed_from(self.random_state)
        self.entity_table_ = X.entity_table
        self._prepare(X, y)
        self._resolve_batch_size(X)

    def _fit_untrained(self, X, y):
        """Set up as ``fit(X, y)`` does (task type, classes, :meth:`_set_up`) and keep the module
        training would start from, untrained, as ``module_``: Relatron's seed embeddings."""
        self._validate_params()
        X, y, _, _ = resolve_fit_input(X, y)
        self.task_type_ = self._resolve_task_type(None, y)
        y = self._encode_target(y, fitting=True)
        with torch_threads(self.n_jobs):
            self._set_up(X, y)
        with torch.random.fork_rng(devices=[]):
            self.module_ = self._initial_module().eval()
        return self

    def _resolve_batch_size(self, X) -> None:
        """Set ``batch_size_``: ``batch_size`` when it is an int; for ``"auto"``, the largest batch
        of at most :data:`AUTO_BATCH_CAP` rows whose training step fits ``memory_limit``.

        A row's share of a step is :data:`STEP_FACTOR` times its activations measured on a probe
        (:func:`activation_bytes` over :data:`PROBE_ROWS` rows spread over ``X``), so the choice
        depends on the budget, the data and the settings only, never on the memory free at the
        time (unless ``memory_limit=None`` picks a budget below its 2 GiB cap: with under 5 GiB
        available).
        """
        if self.batch_size != "auto":
            self.batch_size_ = int(self.batch_size)
            return
        limit = getattr(self, "memory_limit", None)
        budget = parse_memory(limit) if limit is not None else default_memory_limit()
        n = len(X)
        rows = np.unique(np.linspace(0, n - 1, min(PROBE_ROWS, n)).round().astype(np.int64))
        self.batch_size_ = len(rows)  # the probe's loader takes all its rows in one batch
        try:
            saved = activation_bytes(self, self._make_loader(X[rows]))
        finally:
            del self.batch_size_
        per_row = max(1, int(STEP_FACTOR * saved / len(rows)))
        self.batch_size_ = int(max(1, min(AUTO_BATCH_CAP, budget // per_row)))
        self._log(f"batch_size='auto': {self.batch_size_} rows (a training step about {per_row / 2**20:.2f} MiB a row, "
                  f"probe of {len(rows)} rows; memory_limit {budget / 2**30:.2f} GiB)")

    # ------------------------------------------------------------------ predict
    def _check_X(self, X) -> None:
        """Raise when ``X`` cannot be predicted by this model (families add schema checks)."""
        if X.entity_table != self.entity_table_:
            raise ValueError(
                f"X is over entity table {X.entity_table!r}, the model was fitted on {self.entity_table_!r}."
            )

    def _prediction_input(self, X):
        self._check_X(X)
        return X

    def _predict_proba(self, X):
        return self.module_.head.transform(self._raw(X))

    def _predict_values(self, X):
        return self.module_.head.transform(self._raw(X))

    def embed(self, X) -> np.ndarray:
        """The network's output before its head for each row of ``X``, shape (n, channels)."""
        check_is_fitted(self, "module_")
        X = check_relational_X(X)
        self._check_X(X)
        device = self._torch_device()
        with torch_threads(self.n_jobs):
            module = self.module_.to(device).eval()
            try:
                loader = self._make_loader(X)
                with torch.no_grad():
                    out = torch.cat([module.embed(b.to(device)).to("cpu") for b in loader])
                order = getattr(loader, "order", None)
                if order is not None:
                    sorted_out, out = out, torch.empty_like(out)
                    out[torch.from_numpy(np.asarray(order()))] = sorted_out
            finally:
                self.module_ = module.to("cpu")
        return out.numpy().astype(np.float64)

    # ------------------------------------------------------------------ loss surface
    def probe_batches(self, X, y, max_batches: int | None = None) -> list:
        """A fixed probe set for loss-landscape measurements: evaluation batches of ``(X, y)``.

        Each batch has ``batch.y`` (the encoded targets the training loss takes), and
        ``self.module_.loss(self.module_(batch), batch.y)`` is the training loss on it. Batches
        are built deterministically (evaluation sampling from ``seed_``), so the same rows give
        the same probe set.

        Parameters
        ----------
        X : RelationalDataset
        y : array-like of shape (n,)
            Labels in the user's encoding (as passed to ``fit``).
        max_batches : int or None, default=None
            Keep the first batches only.

        Returns
        -------
        list of batches (on the CPU)
        """
        check_is_fitted(self, "module_")
        X = check_relational_X(X)
        self._check_X(X)
        y = self._target(self._encode_target(np.asarray(y), fitting=False))
        it = iter(self._make_loader(X, y))
        if max_batches is not None:
            it = itertools.islice(it, max_batches)
        return list(it)
