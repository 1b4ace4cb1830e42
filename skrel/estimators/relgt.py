"""The Relational Graph Transformer (RelGT) as a scikit-learn estimator."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..data import HORIZONS
from ._base import RelationalEstimator, seed_from
from ._torch_state import TorchModuleState

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


class RelGTEstimator(TorchModuleState, RelationalEstimator):
    """Relational Graph Transformer (Dwivedi et al., ICLR 2026, arXiv:2505.10960).

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
    layers : int, default=1
        Local transformer layers ``L`` (the paper: 1, 4 or 8).
    centroids : int, default=64
        Global centroids ``B`` (the paper: 4096).
    dropout : float, default=0.2
        Dropout of the feed-forward blocks, and of attention (the paper: 0.3 to 0.5).
    lr : float, default=0.001
        Adam learning rate (the paper: 1e-4).
    epochs : int, default=20
    batch_size : int, default=128
        Rows per step (the paper: 256).
    patience : int or None, default=5
        Stop after this many epochs without a better validation score (None: never); the best
        epoch's weights are restored whenever there are validation rows.
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
    device : str, default="cpu"
        Torch device, e.g. ``"cuda"``.
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
        Column types and statistics of the training database.
    history_ : list of dict
        Per epoch: training loss, validation score, seconds.
    best_epoch_ : int

    Notes
    -----
    CPU defaults: ``tokens=48, channels=64, layers=1, centroids=64, lr=1e-3, batch_size=128`` train
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
        **RelationalEstimator._parameter_constraints,
        "tokens": [Interval(Integral, 1, None, closed="left")],
        "channels": [Interval(Integral, 1, None, closed="left")],
        "heads": [Interval(Integral, 1, None, closed="left")],
        "layers": [Interval(Integral, 0, None, closed="left")],
        "centroids": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "patience": [Interval(Integral, 1, None, closed="left"), None],
        "ablate": [str, list, tuple, None],
        "encoder_layers": [Interval(Integral, 0, None, closed="left")],
        "max_fanout": [Interval(Integral, 1, None, closed="left")],
        "half_life": [Interval(Real, 0, None, closed="neither"), None],
        "horizon": [StrOptions(set(HORIZONS))],
        "resample": ["boolean"],
        "time_encoding": [StrOptions({"linear", "sinusoidal"})],
        "device": [str],
    }

    def __init__(self, tokens=100, channels=64, heads=4, layers=1, centroids=64, dropout=0.2, lr=0.001, epochs=20,
                 batch_size=128, patience=5, ablate=(), encoder_layers=1, max_fanout=1000, half_life=365.0,
                 horizon="cutoff", resample=False, time_encoding="sinusoidal", device="cpu", task_type="auto",
                 random_state=None, verbose=0):
        self.tokens = tokens
        self.channels = channels
        self.heads = heads
        self.layers = layers
        self.centroids = centroids
        self.dropout = dropout
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.patience = patience
        self.ablate = ablate
        self.encoder_layers = encoder_layers
        self.max_fanout = max_fanout
        self.half_life = half_life
        self.horizon = horizon
        self.resample = resample
        self.time_encoding = time_encoding
        self.device = device
        self.task_type = task_type
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def _fit(self, X, y, X_val, y_val):
        import torch

        from ..graph import feature_spec
        from ..nn.training import Trainer

        if self.channels % self.heads:
            raise ValueError(f"channels ({self.channels}) must be a multiple of heads ({self.heads}).")
        ablate = _ablations(self.ablate)
        self.seed_ = seed_from(self.random_state)
        self.spec_ = feature_spec(X.db)
        self.tables_ = X.db.table_names
        train = self._loader(X, y, shuffle=True)
        val = None if X_val is None else self._loader(X_val, y_val, shuffle=False)
        n_classes = len(self.classes_) if self.task_type_ != "regression" else 1
        clamp = None if self.task_type_ != "regression" else tuple(np.quantile(y, [0.02, 0.98]))
        self._module_kwargs = dict(
            tables=self.tables_, col_names_dict=self.spec_.col_names_dict, col_stats=self.spec_.col_stats,
            task_type=self.task_type_, n_classes=n_classes, clamp=clamp, channels=self.channels, heads=self.heads,
            num_layers=self.layers, num_centroids=self.centroids, dropout=self.dropout, attn_dropout=self.dropout,
            encoder_layers=self.encoder_layers, noise_dim=_NOISE_DIM, time_encoding=self.time_encoding,
            ablate=ablate,
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed_)
            self.module_ = self._new_module(self._module_kwargs)
            if self.task_type_ == "regression":
                with torch.no_grad():
                    self.module_.head.lin.bias.fill_(float(np.median(y)))
            self._log(f"RelGT with {sum(p.numel() for p in self.module_.parameters())} parameters, "
                      f"{len(X)} training rows, {self.tokens} tokens each")
            trainer = Trainer(self.module_, lr=self.lr, epochs=self.epochs, patience=self.patience,
                              score_fn=self._score_fn(), higher_is_better=True, device=self.device,
                              grad_clip=1.0, log=self._log)
            trainer.fit(train, val)
        self.module_.to("cpu").eval()
        self.history_ = trainer.history_
        self.best_epoch_ = trainer.best_epoch_
        return self

    def _new_module(self, kwargs):
        from ..nn.relgt import RelGT

        return RelGT(**kwargs)

    def _score_fn(self):
        from sklearn.metrics import roc_auc_score

        task_type = self.task_type_

        def score(raw, y):
            raw, y = raw.double().numpy(), y.numpy()
            if task_type == "binary":
                return roc_auc_score(y, raw) if len(np.unique(y)) == 2 else -float(np.mean(np.abs(raw - y)))
            if task_type == "regression":
                return -float(np.mean(np.abs(raw - y)))
            return float(np.mean(raw.argmax(1) == y))

        return score

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

    def _loader(self, X, y=None, shuffle=False):
        from ..graph import materialize
        from ..graph.context import hash_uniform
        from ..nn.relgt import ContextLoader

        graph, ctx = self._contexts(X, self.seed_)
        tf_dict = {t: tf.to(self.device) for t, tf in materialize(X.db, self.spec_).items()}
        resample = None
        if shuffle and self.resample:
            def resample(epoch):
                seed = int(hash_uniform(np.int64(self.seed_), np.int64(epoch)) * 2**62)
                return self._contexts(X, seed, cache=False)[1]
        return ContextLoader(ctx, graph.offsets, tf_dict, y, batch_size=self.batch_size, noise_dim=_NOISE_DIM,
                             shuffle=shuffle, seed=self.seed_, resample=resample)

    # ------------------------------------------------------------------ predict
    def _raw(self, X):
        import torch

        from ..nn.training import predict_raw

        check_is_fitted(self, "module_")
        if X.db.table_names != self.tables_:
            raise ValueError(f"X's database has tables {X.db.table_names}; the model was fitted on {self.tables_}.")
        loader = self._loader(X)
        with torch.no_grad():
            raw_sorted = predict_raw(self.module_.to(self.device), loader, self.device)
        self.module_.to("cpu")
        raw = torch.empty_like(raw_sorted)
        raw[torch.from_numpy(loader.order())] = raw_sorted
        return raw

    def _predict_proba(self, X):
        return self.module_.head.transform(self._raw(X))

    def _predict_values(self, X):
        return self.module_.head.transform(self._raw(X))

