"""Neural tabular learners from pytorch-frame over a numeric feature matrix (DFS's neural learners).

:class:`TorchFrameLearner` is a scikit-learn classifier or regressor over a float matrix (the
DFS feature matrix after :class:`~skrel.estimators._tabular.FrameEncoder`): every column is a
pytorch-frame numerical column, standardised with the mean and standard deviation of the
training matrix, fed to ``torch_frame.nn.models.MLP``, ``ResNet`` or ``FTTransformer`` and then to
:class:`~skrel.nn.heads.PredictionHead`. It trains through the torch families' shared skorch loop
(:class:`~skrel.estimators._torch.TorchTrainer`): same validation record (higher is better), same
early stopping with best-epoch restore, same pickling.

Missing values. pytorch-frame's numerical encoder (``LinearEncoder``) does not impute by default
(``na_strategy=None``): a NaN cell gives a NaN embedding that the encoder then sets to zero
(``torch.nan_to_num`` in ``StypeEncoder.forward``). The forward pass is finite, but the gradient
of the column's weight is ``0 * NaN = NaN``: one missing cell in a batch turns the column's
weights into NaN at the first optimizer step, and the column is silent from then on. So the
encoders here impute the training mean (``na_strategy=NAStrategy.MEAN``, the mean from the
column statistics of the training matrix), and, since DFS aggregates over no related row are
missing and that is information, each column with a missing value in the training matrix gets a
0/1 missing-indicator column (``add_indicator``, as in :class:`sklearn.impute.SimpleImputer`).
Infinite values are treated as missing.
"""

from __future__ import annotations

import itertools
from numbers import Integral

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils._tags import ClassifierTags, RegressorTags
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ..utils import infer_task_type, seed_from
from ._tabular import NEURAL_LEARNERS, is_neural_learner  # noqa: F401 (their home is torch-free)
from ._torch import TRAINING_CONSTRAINTS, Batches, TorchTrainer, torch_threads

__all__ = ["NEURAL_LEARNERS", "TorchFrameLearner", "TorchFrameNet", "FrameBatches", "is_neural_learner"]

# ---------------------------------------------------------------------------- data
def column_stats(X: np.ndarray) -> list[dict]:
    """pytorch-frame numerical column statistics of a matrix, ignoring missing values.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Float matrix; NaN and infinite cells are missing.

    Returns
    -------
    list of d dicts
        ``{StatType.MEAN, StatType.STD, StatType.QUANTILES}`` per column. A column with no
        present value gets mean 0 and standard deviation 1, a constant one standard deviation 1.
    """
    from torch_frame.data.stats import StatType

    X = np.asarray(X, dtype=np.float64)
    out = []
    for j in range(X.shape[1]):
        v = X[:, j]
        v = v[np.isfinite(v)]
        if v.size:
            mean, std, q = float(v.mean()), float(v.std()), np.quantile(v, [0.0, 0.25, 0.5, 0.75, 1.0])
            std = std if std > 0 else 1.0  # a constant column: unseen values stay on the data's scale
        else:
            mean, std, q = 0.0, 1.0, np.zeros(5)
        out.append({StatType.MEAN: mean, StatType.STD: std, StatType.QUANTILES: [float(x) for x in q]})
    return out


class FrameBatches:
    """Row batches of a pytorch-frame ``TensorFrame``: a loader for the shared torch base.

    Re-iterable (one pass per epoch). With ``shuffle``, each pass visits the rows in an order drawn
    from ``seed + epoch`` (:meth:`set_epoch`), so training is reproducible.

    Parameters
    ----------
    tf : torch_frame.TensorFrame
        ``n`` rows; ``tf.y`` the targets (or None).
    batch_size : int
    shuffle : bool, default=False
    seed : int, default=0

    Shapes
    ------
    Each batch is a ``TensorFrame`` of at most ``batch_size`` rows, numerical features
    ``(B, d)`` and ``batch.y`` ``(B,)`` (or None).
    """

    def __init__(self, tf, batch_size: int, shuffle: bool = False, seed: int = 0):
        self.tf = tf
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return -(-self.tf.num_rows // self.batch_size)

    def __iter__(self):
        n = self.tf.num_rows
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(n, generator=g)
        else:
            order = torch.arange(n)
        for start in range(0, n, self.batch_size):
            yield self.tf[order[start:start + self.batch_size]]


# ---------------------------------------------------------------------------- module
class TorchFrameNet(nn.Module):
    """A pytorch-frame backbone over numerical columns, then a :class:`~skrel.nn.heads.PredictionHead`.

    ``embed(tf) = backbone(tf)`` with the backbone's output width set to ``channels``;
    ``forward(tf) = head(embed(tf))``. Backbones (Gorishniy et al., 2021, "Revisiting Deep
    Learning Models for Tabular Data", arXiv 2106.11959, as implemented by pytorch-frame): ``"mlp"``
    (column embeddings averaged, then ``num_layers`` linear layers with layer norm, ReLU and
    dropout), ``"resnet"`` (column embeddings flattened, then ``num_layers`` residual blocks),
    ``"ft_transformer"`` (a CLS token attending over the column embeddings in ``num_layers``
    transformer layers; its cost grows with the square of the number of columns).

    Parameters
    ----------
    model : {"mlp", "resnet", "ft_transformer"}
    channels : int
        Width of the column embeddings and hidden layers (a multiple of 8 for ``"ft_transformer"``,
        whose layers have 8 heads).
    num_layers : int
    col_stats : list of dict
        Per column, pytorch-frame statistics (:func:`column_stats` of the training matrix); the
        means impute missing cells (``NAStrategy.MEAN``).
    task_type : {"binary", "multiclass", "regression"}
    n_classes : int, default=2
    dropout : float, default=0.2
        Dropout of the MLP and ResNet backbones (FTTransformer has none).
    clamp, target_loc, target_scale
        Regression head settings (see :class:`~skrel.nn.heads.PredictionHead`).

    Shapes
    ------
    input: ``TensorFrame`` of ``B`` rows, numerical features ``(B, d)``;
    ``embed`` -> ``(B, channels)``; ``forward`` -> raw outputs ``(B,)`` (binary, regression) or
    ``(B, n_classes)``; ``loss(raw, y)`` -> scalar.
    """

    def __init__(self, model: str, channels: int, num_layers: int, col_stats: list, task_type: str,
                 n_classes: int = 2, dropout: float = 0.2, clamp=None, target_loc=0.0, target_scale=None):
        super().__init__()
        import torch_frame
        from torch_frame import NAStrategy
        from torch_frame.nn.encoder import LinearEncoder
        from torch_frame.nn.models import MLP, FTTransformer, ResNet

        from ..nn.heads import PredictionHead

        names = [f"x{j}" for j in range(len(col_stats))]
        stats = dict(zip(names, col_stats))
        col_names = {torch_frame.stype.numerical: names}
        encoders = {torch_frame.stype.numerical: LinearEncoder(na_strategy=NAStrategy.MEAN)}
        if model == "mlp":
            self.backbone = MLP(channels, channels, num_layers, stats, col_names, encoders, dropout_prob=dropout)
        elif model == "resnet":
            self.backbone = ResNet(channels, channels, num_layers, stats, col_names, encoders, dropout_prob=dropout)
        elif model == "ft_transformer":
            self.backbone = FTTransformer(channels, channels, num_layers, stats, col_names, encoders)
        else:
            raise ValueError(f"model must be one of {list(NEURAL_LEARNERS)}, got {model!r}.")
        self.head = PredictionHead(channels, task_type, n_classes, clamp, target_loc, target_scale)

    def embed(self, tf):
        return self.backbone(tf)

    def forward(self, tf):
        return self.head(self.embed(tf))

    def loss(self, raw, y):
        return self.head.loss(raw, y)


# ---------------------------------------------------------------------------- memory guard
#: Bytes per training row, layer, head and squared token count of FT-Transformer's attention (scores,
#: softmax, dropout mask and their gradients in float32: measured about 4 such tensors).
_ATTENTION_BYTES = 16
_FT_HEADS = 8


def ft_transformer_bytes(batch_size: int, n_columns: int, num_layers: int) -> int:
    """Estimated peak training memory of FT-Transformer's attention: every layer keeps
    ``batch x heads x (columns + 1)^2`` attention weights (the CLS token is one more token)
    and their gradients. Measured on CPU: about 63 MB a row at 500 columns and 2 layers."""
    return int(_ATTENTION_BYTES * batch_size * num_layers * _FT_HEADS * (n_columns + 1) ** 2)


def available_memory(device) -> int:
    """Free memory of ``device`` in bytes (CUDA: ``torch.cuda.mem_get_info``; CPU: psutil)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    import psutil

    return int(psutil.virtual_memory().available)


# ---------------------------------------------------------------------------- learner
class TorchFrameLearner(TorchTrainer, BaseEstimator):
    """A pytorch-frame network (MLP, ResNet or FT-Transformer) as a scikit-learn learner over a
    numeric matrix, trained through the torch families' shared skorch loop.

    ``DFSEstimator(learner="mlp")`` builds one with the defaults below;
    ``DFSEstimator(learner=TorchFrameLearner(model="resnet", channels=128))`` sets its
    hyperparameters (the instance is cloned; a grid search reaches them as ``learner__channels``).

    Parameters
    ----------
    model : {"mlp", "resnet", "ft_transformer"}, default="mlp"
        The backbone (see :class:`TorchFrameNet`). ``"ft_transformer"`` attends over every column:
        its memory and time grow with the square of the columns (about 63 MB a training row at 500
        columns and 2 layers, seconds a step on a CPU); ``fit`` raises MemoryError, with the batch
        size that would fit, when the estimate exceeds half the free memory.
    channels : int, default=64
        Hidden width.
    num_layers : int, default=2
        Layers (MLP), residual blocks (ResNet) or transformer layers (FT-Transformer).
    dropout : float in [0, 1), default=0.2
        Dropout (MLP, ResNet).
    lr : float, default=1e-3
        Adam learning rate.
    weight_decay : float, default=0.0
    max_epochs : int, default=50
    batch_size : int, default=256
    n_iter_no_change : int or None, default=10
        Stop after this many epochs without a better validation score (``fit(..., X_val, y_val)``);
        ``None`` never stops early. The best epoch's weights are kept whenever there are
        validation rows; without them the last epoch's.
    add_indicator : bool, default=True
        Append a 0/1 missing-indicator column for each column with a missing value in the
        training matrix (missing cells themselves get the training mean; module docstring).
    gradient_clip_value : float or None, default=None
    callbacks : list of skorch callbacks or None, default=None
    device : str, default="cpu"
        ``"cuda"`` falls back to the CPU with a warning when none is available.
    task_type : {"auto", "binary", "multiclass", "regression"}, default="auto"
        ``"auto"``: from the training targets (:func:`skrel.utils.infer_task_type`).
        ``DFSEstimator`` sets it to its task's type.
    n_jobs : int or None, default=None
        torch intra-op threads (``None``: torch's current setting).
    random_state : int, RandomState instance or None, default=None
        Seeds the weights, dropout and the shuffling; same value, same predictions.
    verbose : int, default=0

    Attributes
    ----------
    module_ : TorchFrameNet
        The trained network (CPU, eval mode).
    classes_ : ndarray (classification)
    task_type_ : str
    n_features_in_ : int
    indicator_columns_ : ndarray of int
        The input columns that have a missing-indicator column.
    history_, validation_scores_, best_epoch_, best_score_, n_params_, steps_per_epoch_, seed_
        As for the torch families (:class:`~skrel.estimators._torch.TorchRelationalEstimator`).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(64, 3)).astype(np.float32); y = (X[:, 0] > 0).astype(int)
    >>> est = TorchFrameLearner(channels=8, max_epochs=2, random_state=0).fit(X, y)
    >>> est.predict_proba(X).shape
    (64, 2)
    """

    _parameter_constraints = {
        **TRAINING_CONSTRAINTS,
        "model": [StrOptions(set(NEURAL_LEARNERS))],
        "num_layers": [Interval(Integral, 1, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), None],
        "add_indicator": ["boolean"],
        "task_type": [StrOptions({"auto", "binary", "multiclass", "regression"})],
        "n_jobs": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(self, model="mlp", channels=64, num_layers=2, dropout=0.2, lr=1e-3, weight_decay=0.0,
                 max_epochs=50, batch_size=256, n_iter_no_change=10, add_indicator=True, gradient_clip_value=None,
                 callbacks=None,
                 device="cpu", task_type="auto", n_jobs=None, random_state=None, verbose=0):
        self.model = model
        self.channels = channels
        self.num_layers = num_layers
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.n_iter_no_change = n_iter_no_change
        self.add_indicator = add_indicator
        self.gradient_clip_value = gradient_clip_value
        self.callbacks = callbacks
        self.device = device
        self.task_type = task_type
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ data
    def _check_matrix(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2:
            raise ValueError(f"X must be a 2-D matrix, got shape {X.shape}.")
        if hasattr(self, "n_features_in_") and X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, the learner was fitted on {self.n_features_in_}.")
        X = np.where(np.isfinite(X), X, np.float32(np.nan))
        if getattr(self, "indicator_columns_", None) is not None and len(self.indicator_columns_):
            X = np.hstack([X, np.isnan(X[:, self.indicator_columns_]).astype(np.float32)])
        return X

    def _encode_y(self, y) -> np.ndarray:
        """Targets as the loss takes them: class indices of ``classes_``, or floats."""
        y = np.asarray(y)
        if self.task_type_ == "regression":
            return y.astype(np.float32)
        idx = np.searchsorted(self.classes_, y)
        idx = np.clip(idx, 0, len(self.classes_) - 1)
        if not np.array_equal(self.classes_[idx], y):
            unseen = np.unique(y[self.classes_[idx] != y])[:5]
            raise ValueError(f"y has labels {list(unseen)} not seen in fit (classes {list(self.classes_)}).")
        return idx.astype(np.int64) if self.task_type_ == "multiclass" else idx.astype(np.float32)

    def _tensor_frame(self, X: np.ndarray, y=None):
        import torch_frame

        names = [f"x{j}" for j in range(X.shape[1])]
        return torch_frame.TensorFrame({torch_frame.stype.numerical: torch.from_numpy(np.ascontiguousarray(X))},
                                       {torch_frame.stype.numerical: names},
                                       y=None if y is None else torch.from_numpy(y))

    def _make_loader(self, X, y=None, *, train: bool = False) -> FrameBatches:
        return FrameBatches(self._tensor_frame(X, y), self.batch_size, shuffle=train, seed=self.seed_)

    def _new_module(self, kwargs: dict) -> TorchFrameNet:
        return TorchFrameNet(**kwargs)

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, X_val=None, y_val=None):
        """Train on ``(X, y)``; with ``(X_val, y_val)``, early-stop on them and keep the best epoch.

        Parameters
        ----------
        X : array-like of shape (n, d)
            Numeric features (NaN: missing).
        y : array-like of shape (n,)
        X_val : array-like of shape (m, d), optional
        y_val : array-like of shape (m,), optional

        Returns
        -------
        self
        """
        self._validate_params()
        for attr in ("n_features_in_", "classes_", "indicator_columns_"):
            self.__dict__.pop(attr, None)
        X = self._check_matrix(X)
        self.n_features_in_ = X.shape[1]
        missing = np.isnan(X).any(axis=0)
        self.indicator_columns_ = np.flatnonzero(missing) if self.add_indicator else np.zeros(0, dtype=np.intp)
        X = self._check_matrix(X)
        y = np.asarray(y)
        if len(y) != len(X):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)} labels; one label per row.")
        if (X_val is None) != (y_val is None):
            raise ValueError("pass both X_val and y_val, or neither.")
        task_type = self.task_type
        if task_type == "auto":
            task_type = infer_task_type(y)
        self.task_type_ = task_type
        if task_type != "regression":
            self.classes_ = np.unique(y)
        self.seed_ = seed_from(self.random_state)
        y_enc = self._encode_y(y)
        n_classes = len(self.classes_) if task_type == "multiclass" else 2
        self._module_kwargs = dict(model=self.model, channels=self.channels, num_layers=self.num_layers,
                                   col_stats=column_stats(X), task_type=task_type, n_classes=n_classes,
                                   dropout=self.dropout, **self._head_kwargs(y_enc))
        device = self._torch_device()
        if self.model == "ft_transformer":
            self._check_attention_memory(X.shape[1], len(X), device)
        with torch_threads(self.n_jobs):
            train = Batches(self._make_loader(X, y_enc, train=True))
            self.steps_per_epoch_ = len(train)
            valid = None
            if X_val is not None and len(X_val):
                X_val = self._check_matrix(X_val)
                valid = Batches(self._make_loader(X_val, self._encode_y(np.asarray(y_val))))
            self._train_net(train, valid, device, f"training on {len(X)} rows x {X.shape[1]} columns"
                            + ("" if valid is None else f", validating on {len(X_val)}"))
        return self

    def _check_attention_memory(self, n_columns: int, n_rows: int, device) -> None:
        """Refuse an FT-Transformer whose attention would not fit in half the free memory (the
        operating system kills the process instead of raising, so fail first, with the way out)."""
        batch = min(self.batch_size, n_rows)
        need = ft_transformer_bytes(batch, n_columns, self.num_layers)
        free = available_memory(device)
        if need > free // 2:
            per_row = ft_transformer_bytes(1, n_columns, self.num_layers)
            fits = max(0, (free // 2) // per_row)
            raise MemoryError(
                f"FT-Transformer over {n_columns} columns at batch_size={batch} needs about {need / 2**30:.1f} GiB "
                f"for its attention, {free / 2**30:.1f} GiB is free on {device}: its cost grows with the square of "
                f"the columns. Use batch_size <= {fits}, fewer features (DFSEstimator's max_features), "
                "or model='resnet' / 'mlp'."
            )

    # ------------------------------------------------------------------ predict
    def _prediction_input(self, X) -> np.ndarray:
        return self._check_matrix(X)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape (n, n_classes) in the order of ``classes_``."""
        check_is_fitted(self, "module_")
        if self.task_type_ == "regression":
            raise AttributeError("predict_proba is for classification; this learner is a regressor.")
        return self.module_.head.transform(self._raw(X))

    def predict(self, X) -> np.ndarray:
        """Class labels (classification) or values (regression), shape (n,)."""
        check_is_fitted(self, "module_")
        if self.task_type_ == "regression":
            return self.module_.head.transform(self._raw(X))
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def embed(self, X) -> np.ndarray:
        """The backbone's output for each row of ``X``, shape (n, channels)."""
        check_is_fitted(self, "module_")
        loader = self._make_loader(self._check_matrix(X))
        module = self.module_.eval()
        with torch_threads(self.n_jobs), torch.no_grad():
            out = [module.embed(b) for b in loader]
        return torch.cat(out).numpy().astype(np.float64)

    # ------------------------------------------------------------------ loss surface
    def probe_batches(self, X, y, max_batches: int | None = None) -> list:
        """A fixed probe set for loss-landscape measurements: evaluation batches of ``(X, y)``.

        ``self.module_.loss(self.module_(batch), batch.y)`` is the training loss on a batch;
        batches are in row order, so the same rows give the same probe set.

        Parameters
        ----------
        X : array-like of shape (n, d)
        y : array-like of shape (n,)
            Labels as passed to ``fit``.
        max_batches : int or None, default=None
            Keep the first batches only.

        Returns
        -------
        list of TensorFrame batches (on the CPU), each with ``batch.y``
        """
        check_is_fitted(self, "module_")
        X = self._check_matrix(X)
        y = np.asarray(y)
        if len(y) != len(X):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)} labels; one label per row.")
        it = iter(self._make_loader(X, self._encode_y(y)))
        if max_batches is not None:
            it = itertools.islice(it, max_batches)
        return list(it)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if self.task_type == "regression":
            tags.estimator_type = "regressor"
            tags.regressor_tags = RegressorTags()
        elif self.task_type in ("binary", "multiclass"):
            tags.estimator_type = "classifier"
            tags.classifier_tags = ClassifierTags(multi_class=True)
        tags.input_tags.allow_nan = True
        return tags
