"""``RDLEstimator``: RelBench's relational deep learning recipe as a scikit-learn estimator.

A heterogeneous temporal GNN over the whole database: every table a node type, every foreign key
an edge type (both ways); each ``(entity, cutoff)`` row samples its own temporal subgraph (only
rows with time ``<= cutoff``), which per-table ResNet encoders, a relative-time encoding and
GraphSAGE layers turn into a prediction. See :mod:`skrel.graph` and :mod:`skrel.nn`.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from ..data import SchemaError, horizon_cutoffs
from ._base import check_relational_X
from ._torch import TorchRelationalEstimator

__all__ = ["RDLEstimator", "seed_embeddings", "resolve_fanouts"]


def resolve_fanouts(fanouts, num_layers: int) -> list[int]:
    """``fanouts`` as a list of ``num_layers`` ints: an int ``k`` means RelBench's ``[k, k/2, k/4, ...]``."""
    if isinstance(fanouts, (Integral, np.integer)):
        k = int(fanouts)
        if k == -1:
            return [-1] * num_layers
        return [max(1, k // 2**i) for i in range(num_layers)]
    out = [int(k) for k in fanouts]
    if len(out) != num_layers:
        raise ValueError(f"fanouts {out} has {len(out)} entries; give one per layer (num_layers={num_layers}).")
    if any(k == 0 or k < -1 for k in out):
        raise ValueError(f"fanouts must be positive (or -1 for all neighbours), got {out}.")
    return out


class _Context:
    """What a fitted model needs of one database: its graph, features and sampler (cached per db)."""

    def __init__(self, db, spec, fanouts, strategy):
        from ..graph import build_graph, materialize
        from ..graph.sampler import TemporalSampler

        self.graph = build_graph(db)
        self.tfs = materialize(db, spec)
        key = ("skrel.rdl.sampler", tuple(fanouts), strategy)
        sampler = self.graph._cache.get(key)
        if sampler is None:
            sampler = TemporalSampler(self.graph, fanouts, strategy)
            self.graph._cache[key] = sampler
        self.sampler = sampler


class RDLEstimator(TorchRelationalEstimator):
    """Relational deep learning (RelBench's GraphSAGE recipe) over a :class:`~skrel.data.Database`.

    Parameters
    ----------
    channels : int, default=128
        Width of every hidden vector (even).
    num_layers : int, default=2
        GraphSAGE layers, and sampling hops.
    fanouts : int or list of int, default=128
        Neighbours sampled per node and edge type at each hop; an int ``k`` means
        ``[k, k // 2, ...]`` (RelBench: 128 -> ``[128, 64]``); ``-1`` takes all.
    aggr : {"sum", "mean", "max"}, default="sum"
    temporal_strategy : {"uniform", "last"}, default="uniform"
        Sample visible neighbours uniformly, or take the most recent ones.
    horizon : {"cutoff", "data"}, default="cutoff"
        Where node ages (seed time - node time) are counted from: each row's cutoff, or the
        earlier of the cutoff and the last time in the database (:func:`skrel.data.horizon_cutoffs`).
        Both sample only rows dated at or before the cutoff; they differ only for cutoffs past
        the end of the data (RelBench's protocol), as :class:`~skrel.estimators.DFSEstimator`'s
        parameter of the same name.
    encoder_layers : int, default=4
        Residual blocks of each table's ResNet encoder.
    dropout : float, default=0.2
        Dropout inside the table encoders.
    lr : float, default=0.005
        Adam learning rate.
    weight_decay : float, default=0.0
    max_epochs : int, default=10
    max_steps_per_epoch : int or None, default=None
        Batches per epoch at most (each epoch reshuffles, so bounded epochs still see every row
        over time); None: all.
    batch_size : int or "auto", default="auto"
        Rows per optimizer step. ``"auto"``: the largest batch of at most 512 rows (RelBench's
        batch size) whose training step fits ``memory_limit``, measured on a probe of 64 training
        rows (the tensors one forward pass keeps for the backward pass, times 1.25 for their
        gradients); the choice is ``batch_size_`` (logged with ``verbose``). rel-f1's tasks get
        512 (about 3.1 MiB a row); ``wide`` (``skrel.datasets.make_wide``) 184 (11 MiB a row).
    memory_limit : int, str or None, default=None
        The activation budget of ``batch_size="auto"``: bytes, or a size such as ``"2GB"`` or
        ``"512MiB"``. None: 40% of the memory available at ``fit``, between 256 MiB and 2 GiB
        (as :class:`~skrel.estimators.DFSEstimator`'s), so that with 5 GiB or more available it is
        2 GiB and the batch size does not depend on the moment; set it for a batch size that
        depends on the data and settings only. Ignored when ``batch_size`` is an int.
    min_steps_per_epoch : int or None, default=10
        Small training sets are cut into smaller batches, so that an epoch makes at least this
        many optimizer steps (with 512 rows a batch, rel-f1's driver-top3 gets 3 steps an epoch,
        too few for 10 epochs to train reliably). None: always ``batch_size``.
    n_iter_no_change : int or None, default=None
        Stop after this many epochs without a better validation score (None: run all epochs).
        The best epoch's weights are kept whenever there are validation rows.
    validation_fraction : float or None, default=0.1
        With ``fit(X, y)`` and no ``X_val``: hold out the rows with the latest cutoffs (about this
        fraction, whole cutoffs) for early stopping and best-epoch selection. None or 0: no
        validation, the last epoch is kept. ``fit(db, task)`` always uses the task's val split.
    gradient_clip_value : float or None, default=None
        Clip the gradient norm (skorch's ``GradientNormClipping``); None: no clipping.
    text_embedder : callable or None, default=None
        ``list[str] -> Tensor (n, d)`` for text columns (see :mod:`skrel.graph.text`);
        None: :class:`~skrel.graph.text.HashingTextEmbedder` (offline).
    stypes : dict or None, default=None
        Column type overrides ``{table: {column: stype name or None}}`` (None drops a column).
    device : str, default="cpu"
        Torch device for training and inference; ``"cuda"`` falls back to the CPU with a warning
        when no GPU is available.
    callbacks : list of skorch callbacks or None, default=None
        Added to the training loop (e.g. ``skorch.callbacks.LRScheduler``, ``Checkpoint``).
    n_jobs : int or None, default=None
        Torch threads during fit and predict (None: torch's current setting). Predictions are
        identical for the same ``random_state`` and ``n_jobs`` on the same processor model.
    task_type : {"auto", "binary", "multiclass", "regression"}, default="auto"
    random_state : int, RandomState instance or None, default=None
        Seeds weights, dropout, shuffling and neighbour sampling: same value, same predictions
        (on the CPU).
    verbose : int, default=0
        1: progress bars over batches and an epoch log (logger ``skrel``).

    Attributes
    ----------
    module_ : skrel.nn.rdl.RDLModel
        The trained model (on the CPU).
    spec_ : skrel.graph.FeatureSpec
        Column types and statistics of the training database's rows visible at the latest
        training cutoff (never later rows), reused at predict time.
    fanouts_ : list of int
    history_ : list of dict
        Per epoch: train and validation loss, validation score, steps, seconds.
    validation_scores_ : list of float
        Per epoch, higher is better (AUROC, accuracy, or minus MAE).
    best_epoch_ : int
    best_score_ : float or None
    n_params_ : int
    batch_size_ : int
        Rows per batch: ``batch_size``, or the choice of ``batch_size="auto"`` (training batches
        are smaller still when ``min_steps_per_epoch`` asks for it).
    seed_ : int
        The seed drawn from ``random_state`` at fit time (prediction-time sampling uses it too).
    classes_ : ndarray
        Classification only.

    Notes
    -----
    Point in time: the subgraph of a row holds only rows with time ``<= cutoff`` (tables without a
    time column always visible), in the database that ``X`` is over. Predictions of a row depend
    on its entity, cutoff and visible rows only: its neighbour sample is drawn from a hash of
    ``random_state``, the entity and the cutoff's rank among the database's distinct times (so
    shifting every time of the database and the task by one amount changes no prediction), not
    from a shared random stream. Identical
    predictions for the same ``random_state`` hold on the same processor model (MKL picks its
    float32 matrix-multiply kernels per processor; ``MKL_CBWR`` changes them too) and the same
    torch thread count (``n_jobs``).

    Differences from RelBench's ``gnn_entity.py`` recipe, all for speed or numerics:

    - sampling: our vectorised temporal sampler (per-seed computation trees; same seed output
      as PyG's disjoint temporal sampling at depth 2), with layer trimming in GraphSAGE;
    - each distinct row of a batch is encoded once and each distinct node age time-encoded once
      (so a row's copies in one batch share a dropout mask), and the ResNets' first block is
      computed in fused form (:func:`skrel.nn.encoders.resnet_forward`): same function, and
      finite gradients where pytorch-frame's own forward gives NaN gradients for missing
      numerical values (which silently disable that table's numerical features after one step);
    - training sets too small for ``min_steps_per_epoch`` batches of ``batch_size`` get smaller
      batches (RelBench always uses 512);
    - text columns use an offline hashing embedder instead of GloVe.

    Examples
    --------
    >>> from skrel.datasets import load_f1  # doctest: +SKIP
    >>> db, tasks = load_f1("../shared/data/f1")  # doctest: +SKIP
    >>> est = RDLEstimator(random_state=0).fit(db, tasks["driver-dnf"])  # doctest: +SKIP
    >>> X_test, y_test = tasks["driver-dnf"].split(db, "test")  # doctest: +SKIP
    >>> est.predict_proba(X_test)[:, 1]  # doctest: +SKIP
    """

    _parameter_constraints = {
        **TorchRelationalEstimator._parameter_constraints,
        "fanouts": [Interval(Integral, -1, None, closed="left"), list, tuple],
        "aggr": [StrOptions({"sum", "mean", "max"})],
        "temporal_strategy": [StrOptions({"uniform", "last"})],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "memory_limit": [str, Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(self, channels=128, num_layers=2, fanouts=128, aggr="sum", temporal_strategy="uniform",
                 horizon="cutoff", encoder_layers=4, dropout=0.2, lr=0.005, weight_decay=0.0, max_epochs=10,
                 max_steps_per_epoch=None, batch_size="auto", memory_limit=None, min_steps_per_epoch=10,
                 n_iter_no_change=None, validation_fraction=0.1, gradient_clip_value=None, text_embedder=None,
                 stypes=None, device="cpu", callbacks=None, n_jobs=None, task_type="auto", random_state=None,
                 verbose=0):
        self.channels = channels
        self.num_layers = num_layers
        self.fanouts = fanouts
        self.aggr = aggr
        self.temporal_strategy = temporal_strategy
        self.horizon = horizon
        self.encoder_layers = encoder_layers
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.max_steps_per_epoch = max_steps_per_epoch
        self.batch_size = batch_size
        self.memory_limit = memory_limit
        self.min_steps_per_epoch = min_steps_per_epoch
        self.n_iter_no_change = n_iter_no_change
        self.validation_fraction = validation_fraction
        self.gradient_clip_value = gradient_clip_value
        self.text_embedder = text_embedder
        self.stypes = stypes
        self.device = device
        self.callbacks = callbacks
        self.n_jobs = n_jobs
        self.task_type = task_type
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ data
    def _context(self, db):
        return _Context(db, self.spec_, self.fanouts_, self.temporal_strategy)

    def _make_loader(self, X, y=None, *, train=False):
        from ..graph.loader import SeedLoader
        from ..graph.sampler import seed_salts

        ctx = self._context(X.db)
        nodes = ctx.graph.node_index(X.entity_table, X.entity_ids)
        times = horizon_cutoffs(X, self.horizon).view(np.int64)
        if train:
            salts = seed_salts(self.seed_, np.arange(len(X)))
        else:
            # a row's draws hash its entity and its cutoff's rank among the database's times (not
            # the absolute cutoff: shifting every time must not change a prediction)
            salts = seed_salts(self.seed_, ctx.graph.node_key[X.entity_table][nodes], ctx.graph.cutoff_rank(times))
        batch_size = self._train_batch_size(len(X)) if train else self._batch_size()
        return SeedLoader(ctx.sampler, ctx.tfs, X.entity_table, nodes, times, salts, y=y,
                          batch_size=batch_size, shuffle=train, random_state=self.seed_)

    def _new_module(self, kwargs):
        from ..nn.rdl import RDLModel

        return RDLModel(**kwargs)

    # ------------------------------------------------------------------ fit
    def _prepare(self, X, y):
        from ..graph import feature_spec

        if self.channels % 2:
            raise ValueError(f"channels must be even (sinusoidal time encoding), got {self.channels}.")
        self.fanouts_ = resolve_fanouts(self.fanouts, self.num_layers)
        self._log(f"building graph and features for {X.db!r}")
        # statistics of the rows visible at the latest training cutoff only (point in time)
        self.spec_ = feature_spec(X.db, self.text_embedder, self.stypes, upto=X.cutoffs.max())
        graph = self._context(X.db).graph
        self.node_types_ = list(graph.node_types)
        self.edge_types_ = list(graph.edge_types)
        self._module_kwargs = dict(
            col_names_dict=self.spec_.col_names_dict, col_stats=self.spec_.col_stats, node_types=self.node_types_,
            edge_types=self.edge_types_, timed_types=list(graph.timed_types), channels=self.channels,
            num_layers=self.num_layers, aggr=self.aggr, encoder_layers=self.encoder_layers,
            encoder_dropout=self.dropout, task_type=self.task_type_,
            n_classes=1 if self.task_type_ == "regression" else len(self.classes_),
            **self._head_kwargs(y),
        )

    # ------------------------------------------------------------------ predict
    def _check_X(self, X):
        super()._check_X(X)
        if list(self._context(X.db).graph.edge_types) != self.edge_types_:
            raise SchemaError(
                "X.db has a different schema (tables / foreign keys) from the training database; "
                f"expected edge types {self.edge_types_}."
            )


def seed_embeddings(X, y, *, channels=128, num_layers=2, fanouts=128, aggr="sum", temporal_strategy="uniform",
                    encoder_layers=4, batch_size=512, text_embedder=None, task_type="auto", random_state=0,
                    device="cpu") -> np.ndarray:
    """Seed embeddings of an *untrained* RDL model (random weights), shape (n, channels).

    Relatron's path affinity fits a linear model on these: how far the graph's structure alone
    predicts the target. The network is the one ``RDLEstimator.fit(X, y)`` would start training
    from: the same feature statistics (the rows of ``X.db`` visible at ``X``'s latest cutoff),
    graph and weights (drawn from ``random_state``). ``y`` (labels of ``X``'s rows) only shapes the
    prediction head, which the embeddings, taken before it, do not pass through.
    """
    X = check_relational_X(X)
    est = RDLEstimator(channels=channels, num_layers=num_layers, fanouts=fanouts, aggr=aggr,
                       temporal_strategy=temporal_strategy, encoder_layers=encoder_layers, batch_size=batch_size,
                       text_embedder=text_embedder, device=device, task_type=task_type, random_state=random_state)
    return est._fit_untrained(X, y).embed(X)
