"""The Relational Graph Transformer (RelGT) as a scikit-learn estimator."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from ._torch import TorchRelationalEstimator

__all__ = ["RelGTEstimator"]

_NOISE_DIM = 4


def _ablations(ablate) -> tuple:
    """``ablate`` as a tuple of names: None, "", "none", "time", "time,hop" or a sequence."""
    from ..nn.relgt import ABLATABLE

    if ablate is None:
        return ()
    if isinstance(ablate, str):
        ablate = [] if ablate.strip().lower() in ("", "none") else ablate.split(",")
    names = tuple(sorted({str(a).strip() for a in ablate}))
    unknown = [a for a in names if a not in ABLATABLE]
    if unknown:
        raise ValueError(f"ablate names unknown element(s) {unknown}; choose among {list(ABLATABLE)}.")
    return names


class RelGTEstimator(TorchRelationalEstimator):
    r"""Relational Graph Transformer (Dwivedi et al., ICLR 2026, arXiv:2505.10960).

    Each row (entity, cutoff) becomes ``tokens`` tokens sampled from the entity's 1- and 2-hop
    neighbourhood among the rows visible at the cutoff (:mod:`skrel.graph.context`; padding when
    fewer are visible). A token has five elements, each encoded by its own module: the row's
    features (the per-table pytorch-frame encoders RDL uses), its table, its hop, its time
    relative to the cutoff and a structural encoding from a small GNN with random features on
    the tokens' induced subgraph. A local transformer attends among the tokens, the seed attends
    to EMA k-means centroids of all seeds (global module), and a feed-forward block and a task
    head follow (:class:`skrel.nn.relgt.RelGT`).

    Parameters
    ----------
    tokens : int, default=100
        Tokens per row, ``K`` (the paper: 300).
    channels : int, default=64
        Width ``d`` (the paper: 512).
    heads : int, default=4
    num_layers : int, default=1
        Local transformer layers ``L`` (the paper: 1, 4 or 8).
    centroids : int, default=64
        Global centroids ``B`` (the paper: 4096).
    dropout : float, default=0.2
        Dropout of the feed-forward blocks, and of attention (the paper: 0.3 to 0.5).
    lr : float, default=0.001
        Adam learning rate (the paper: 1e-4).
    weight_decay : float, default=0.0
    max_epochs : int, default=20
    batch_size : int, default=128
        Rows per step (the paper: 256).
    max_steps_per_epoch : int or None, default=None
        Batches per epoch at most (None: all).
    min_steps_per_epoch : int or None, default=None
        Small training sets get smaller batches so that an epoch makes at least this many steps
        (None: always ``batch_size``).
    n_iter_no_change : int or None, default=5
        Stop after this many epochs without a better validation score (None: never); the best
        epoch's weights are restored whenever there are validation rows.
    validation_fraction : float or None, default=0.1
        With ``fit(X, y)`` and no ``X_val``: hold out the rows with the latest cutoffs (about this
        fraction, whole cutoffs) as validation rows. ``fit(db, task)`` uses the task's val split.
    gradient_clip_value : float or None, default=1.0
        Clip the gradient norm (skorch's ``GradientNormClipping``).
    ablate : str or sequence of str, default=()
        Elements removed: any of ``"features"``, ``"type"``, ``"hop"``, ``"time"``,
        ``"structure"`` and ``"global"`` (a comma-separated string or a sequence).
    encoder_layers : int, default=1
        Residual blocks of each table's feature encoder.
    max_fanout : int, default=1000
        Neighbours of one node at most entering the context sampler's expansion (hub cap).
    half_life : float or None, default=365.0
        A number of days makes each context favour recent rows, a row's sampling weight halving
        with every ``half_life`` days of age; ``None`` samples uniformly, as the paper does.
    horizon : {"cutoff", "data"}, default="cutoff"
        Where relative times are counted from: each row's cutoff, or the earlier of the cutoff and
        the last time in the database (:func:`skrel.data.horizon_cutoffs`). Both use only rows
        dated at or before the cutoff; they differ only for cutoffs past the end of the data
        (RelBench's protocol), as :class:`~skrel.estimators.DFSEstimator`'s parameter.
    resample : bool, default=False
        Draw new training contexts every epoch (by default they are drawn once per fit).
    time_encoding : {"sinusoidal", "linear"}, default="sinusoidal"
        The relative-time element: RDL's sinusoidal encoding of the age in days, or a linear map
        of the age in years (the paper's description). Sinusoidal is the default because it
        validated better on rel-f1 (val AUROC, seed 0: driver-top3 88.76 against 87.10,
        driver-dnf 80.34 against 79.76; ``docs/relgt.md``).
    text_embedder : callable or None, default=None
        ``list[str] -> Tensor (n, d)`` for text columns (see :mod:`skrel.graph.text`);
        None: the offline hashing embedder.
    stypes : dict or None, default=None
        Column type overrides ``{table: {column: stype name or None}}`` (None drops a column).
    device : str, default="cpu"
        Torch device, e.g. ``"cuda"`` (falls back to the CPU with a warning when none is available).
    callbacks : list of skorch callbacks or None, default=None
        Added to the training loop (e.g. ``skorch.callbacks.LRScheduler``, ``Checkpoint``).
    n_jobs : int or None, default=None
        Torch threads during fit and predict (None: torch's current setting). Predictions are
        identical for the same ``random_state`` and ``n_jobs`` on the same processor model.
    task_type : {"auto", "binary", "multiclass", "regression"}, default="auto"
    random_state : int, RandomState instance or None, default=None
    verbose : int, default=0

    Attributes
    ----------
    task_type_ : str
    classes_ : ndarray of shape (n_classes,)
        Classification only.
    module_ : skrel.nn.relgt.RelGT
        The trained network (on the CPU after unpickling).
    spec_ : skrel.graph.FeatureSpec
        Column types and statistics of the training database's rows visible at the latest
        training cutoff (never later rows), reused at predict time.
    history_ : list of dict
        Per epoch: training and validation loss, validation score, seconds.
    validation_scores_ : list of float
        Per epoch, higher is better (AUROC, accuracy, or minus MAE).
    best_epoch_ : int
    best_score_ : float or None
    n_params_ : int

    Notes
    -----
    CPU defaults: ``tokens=100, channels=64, num_layers=1, centroids=64, lr=1e-3, batch_size=128`` train
    rel-f1's largest task (driver-dnf, 11,411 rows) in well under a minute per epoch on 2 cores.
    The paper's GPU settings are ``tokens=300, channels=512, layers=4, centroids=4096, lr=1e-4,
    batch_size=256`` (set ``device="cuda"``).

    Examples
    --------
    >>> from skrel.datasets import load_f1  # doctest: +SKIP
    >>> db, tasks = load_f1("../shared/data/f1")  # doctest: +SKIP
    >>> RelGTEstimator(random_state=0).fit(db, tasks["driver-top3"])  # doctest: +SKIP
    """

    _parameter_constraints = {
        **TorchRelationalEstimator._parameter_constraints,
        "tokens": [Interval(Integral, 1, None, closed="left")],
        "channels": [Interval(Integral, 1, None, closed="left")],
        "heads": [Interval(Integral, 1, None, closed="left")],
        "centroids": [Interval(Integral, 1, None, closed="left")],
        "ablate": [str, list, tuple, None],
        "max_fanout": [Interval(Integral, 1, None, closed="left")],
        "half_life": [Interval(Real, 0, None, closed="neither"), None],
        "resample": ["boolean"],
        "time_encoding": [StrOptions({"linear", "sinusoidal"})],
    }

    def __init__(self, tokens=100, channels=64, heads=4, num_layers=1, centroids=64, dropout=0.2, lr=0.001,
                 weight_decay=0.0, max_epochs=20, batch_size=128, max_steps_per_epoch=None, min_steps_per_epoch=None,
                 n_iter_no_change=5, validation_fraction=0.1, gradient_clip_value=1.0, ablate=(), encoder_layers=1,
                 max_fanout=1000, half_life=365.0, horizon="cutoff", resample=False, time_encoding="sinusoidal",
                 text_embedder=None, stypes=None, device="cpu", callbacks=None, n_jobs=None, task_type="auto",
                 random_state=None, verbose=0):
        self.tokens = tokens
        self.channels = channels
        self.heads = heads
        self.num_layers = num_layers
        self.centroids = centroids
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.max_steps_per_epoch = max_steps_per_epoch
        self.min_steps_per_epoch = min_steps_per_epoch
        self.n_iter_no_change = n_iter_no_change
        self.validation_fraction = validation_fraction
        self.gradient_clip_value = gradient_clip_value
        self.ablate = ablate
        self.encoder_layers = encoder_layers
        self.max_fanout = max_fanout
        self.half_life = half_life
        self.horizon = horizon
        self.resample = resample
        self.time_encoding = time_encoding
        self.text_embedder = text_embedder
        self.stypes = stypes
        self.device = device
        self.callbacks = callbacks
        self.n_jobs = n_jobs
        self.task_type = task_type
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def _prepare(self, X, y):
        from ..graph import feature_spec

        if self.channels % self.heads:
            raise ValueError(f"channels ({self.channels}) must be a multiple of heads ({self.heads}).")
        ablate = _ablations(self.ablate)
        # statistics of the rows visible at the latest training cutoff only (point in time)
        self.spec_ = feature_spec(X.db, self.text_embedder, self.stypes, upto=X.cutoffs.max())
        self.tables_ = X.db.table_names
        n_classes = len(self.classes_) if self.task_type_ != "regression" else 1
        self._module_kwargs = dict(
            tables=self.tables_, col_names_dict=self.spec_.col_names_dict, col_stats=self.spec_.col_stats,
            task_type=self.task_type_, n_classes=n_classes, channels=self.channels, heads=self.heads,
            num_layers=self.num_layers, num_centroids=self.centroids, dropout=self.dropout,
            attn_dropout=self.dropout, encoder_layers=self.encoder_layers, noise_dim=_NOISE_DIM,
            time_encoding=self.time_encoding, ablate=ablate, **self._head_kwargs(y),
        )

    def _new_module(self, kwargs):
        from ..nn.relgt import RelGT

        return RelGT(**kwargs)

    # ------------------------------------------------------------------ data
    def _contexts(self, X, seed, cache=True):
        """The graph of ``X.db`` and the contexts of ``X``'s rows (cached per database, rows, settings)."""
        from ..graph.context import TokenGraph, contexts_for

        graph = TokenGraph.from_database(X.db)
        key = ("skrel.relgt.contexts", X.key, self.tokens, seed, self.max_fanout, self.half_life, self.horizon)
        if key in X.db.cache:
            return graph, X.db.cache[key]
        ctx = contexts_for(X, self.tokens, seed=seed, max_fanout=self.max_fanout, half_life=self.half_life,
                           graph=graph, horizon=self.horizon)
        if cache:
            X.db.cache[key] = ctx
        return graph, ctx

    def _make_loader(self, X, y=None, *, train=False):
        from ..graph import materialize
        from ..graph.context import hash_uniform
        from ..nn.relgt import ContextLoader

        graph, ctx = self._contexts(X, self.seed_)
        device = self._torch_device()
        tf_dict = {t: tf.to(device) for t, tf in materialize(X.db, self.spec_).items()}
        resample = None
        if train and self.resample:
            def resample(epoch):
                seed = int(hash_uniform(np.int64(self.seed_), np.int64(epoch)) * 2**62)
                return self._contexts(X, seed, cache=False)[1]
        batch_size = self._train_batch_size(len(X)) if train else self._batch_size()
        return ContextLoader(ctx, graph.offsets, tf_dict, y, batch_size=batch_size, noise_dim=_NOISE_DIM,
                             shuffle=train, seed=self.seed_, resample=resample)

    # ------------------------------------------------------------------ predict
    def _check_X(self, X):
        super()._check_X(X)
        if X.db.table_names != self.tables_:
            raise ValueError(f"X's database has tables {X.db.table_names}; the model was fitted on {self.tables_}.")
