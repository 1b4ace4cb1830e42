"""The single list of estimator families, and the parameter vocabulary they share.

Every place that enumerates families reads :data:`FAMILIES`: the command line's ``--model``
choices, the lazy exports of :mod:`skrel`, the benchmarks' model list and the conformance suite
(:mod:`skrel.utils.estimator_checks`, run on every family by ``tests/test_conformance.py``). A new
family is one module (a subclass of :class:`~skrel.estimators._base.RelationalEstimator`) plus one
:class:`FamilySpec` entry here, or, from another package, a ``skrel.families`` entry point
(:func:`load_entry_point_families`); see ``docs/adding-a-family.md``.

:data:`VOCABULARY` is the table of ``docs/parameters.md`` in code: one name per concept, the
retired aliases no family may use, and which kinds of family must have the parameter.
:func:`check_vocabulary` applies it to a family's parameter names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module
from typing import Callable, Iterable, NamedTuple, Union

from scipy.stats import loguniform, randint, uniform

__all__ = [
    "FamilySpec",
    "FAMILIES",
    "MODELS",
    "KINDS",
    "Term",
    "VOCABULARY",
    "family_names",
    "get_spec",
    "get_model_class",
    "make_model",
    "check_vocabulary",
    "NEURAL_DFS_EPOCHS",
    "ENTRY_POINT_GROUP",
    "load_entry_point_families",
]

KINDS = ("all", "torch", "boosted")


@dataclass(frozen=True)
class FamilySpec:
    """How the library, the command line, the benchmarks and the tests know one estimator family.

    Parameters
    ----------
    name : str
        The family's name (``--model NAME`` on the command line, the key in :data:`FAMILIES`).
    module : str
        Module that defines the estimator class, imported only when the class is needed.
    cls : str
        Name of the estimator class in ``module`` (also its lazy export ``skrel.<cls>``).
    description : str
        One line for ``skrel --help`` and the docs.
    test_params : dict
        Tiny, fast settings for the shared conformance suite (a few seconds per fit on the test
        database). Use the names of ``docs/parameters.md``.
    torch : bool
        A torch family: it must have the ``"torch"`` parameters of :data:`VOCABULARY`.
    boosted : bool
        A gradient-boosted family (its default learner): it must have the ``"boosted"`` parameters.
    loss_surface : bool or callable
        Whether the estimator trains by gradient steps on a differentiable loss (a torch module,
        SGD), so that probes of the loss surface apply to it. A callable ``(estimator) -> bool``
        decides per estimator, for a family whose learner is a parameter; see
        :meth:`has_loss_surface`.
    budget_param : str
        The parameter that bounds training work: ``"n_estimators"`` (boosting rounds) or
        ``"max_epochs"``.
    search_space : dict
        ``{parameter: list or scipy.stats distribution}``, usable as is as
        ``param_distributions`` of :class:`sklearn.model_selection.RandomizedSearchCV` or
        :class:`~sklearn.model_selection.ParameterSampler`. Do not edit it in place; copy it.
    bank_configs : int
        Configurations per task in the performance bank (the defaults, then draws from
        ``search_space``): ``skrel bank build``'s and ``PerformanceBank.extend``'s default.
    bank_params : callable or None
        ``(params) -> params``: a configuration drawn from ``search_space`` as the bank stores it
        (JSON: numbers, strings, lists, dicts), for a family whose search space holds something
        else or whose drawn settings need adjusting. None: stored as drawn.
    decode_params : callable or None
        ``(params) -> params``: the inverse, a stored (JSON) configuration as estimator
        parameters; applied by :func:`make_model` (the one factory of every estimator: command
        line, bank, selector, benchmarks). None: used as stored.

    Examples
    --------
    >>> from skrel.estimators.registry import FAMILIES
    >>> FAMILIES["rdl"].budget_param
    'max_epochs'
    """

    name: str
    module: str
    cls: str
    description: str = ""
    test_params: dict = field(default_factory=dict)
    torch: bool = False
    boosted: bool = False
    loss_surface: Union[bool, Callable[[object], bool]] = False
    budget_param: str = "n_estimators"
    search_space: dict = field(default_factory=dict)
    bank_configs: int = 4
    bank_params: Callable[[dict], dict] | None = None
    decode_params: Callable[[dict], dict] | None = None

    def __post_init__(self):
        if not self.name or not self.name.isidentifier():
            raise ValueError(f"FamilySpec name must be an identifier-like string, got {self.name!r}.")
        if not (isinstance(self.loss_surface, bool) or callable(self.loss_surface)):
            raise TypeError(
                f"FamilySpec {self.name!r}: loss_surface must be a bool or a callable (estimator) -> bool, "
                f"got {type(self.loss_surface).__name__}."
            )

    @property
    def kinds(self) -> frozenset:
        """The kinds this family belongs to: ``"all"``, plus ``"torch"`` and/or ``"boosted"``."""
        return frozenset({"all"} | ({"torch"} if self.torch else set()) | ({"boosted"} if self.boosted else set()))

    def get_class(self) -> type:
        """Import and return the estimator class."""
        return getattr(import_module(self.module), self.cls)

    def make(self, params: dict | None = None, **extra):
        """An estimator of this family from a stored (JSON) configuration ``params``, with
        ``extra`` set too (checked by ``set_params``)."""
        params = dict(params or {})
        if self.decode_params is not None:
            params = self.decode_params(params)
        est = self.get_class()()
        if params or extra:
            est.set_params(**params, **extra)
        return est

    def has_loss_surface(self, estimator=None) -> bool:
        """Whether ``estimator`` (of this family; default settings if None) trains on a loss surface."""
        if callable(self.loss_surface):
            return bool(self.loss_surface(self.get_class()() if estimator is None else estimator))
        return self.loss_surface


def _dfs_loss_surface(estimator) -> bool:
    """DFS has a loss surface with a neural learner (``"mlp"``, ``"resnet"``, ``"ft_transformer"``
    or a ``TorchFrameLearner`` instance), not with LightGBM, TabPFN or another scikit-learn learner."""
    learner = estimator.get_params()["learner"]
    if isinstance(learner, str):
        return learner in ("mlp", "resnet", "ft_transformer")
    return learner is not None and hasattr(learner, "probe_batches")


#: Epochs of a neural DFS learner in a stored configuration (TorchFrameLearner's default is 50; what
#: an epoch over rel-f1's ~800 DFS columns costs: benchmarks/results/dfs_neural.md).
NEURAL_DFS_EPOCHS = 5


def _dfs_bank_params(params: dict) -> dict:
    """A drawn DFS configuration as the bank stores it: a neural ``learner`` name becomes the
    ``TorchFrameLearner`` settings ``{"model": name, "max_epochs": NEURAL_DFS_EPOCHS}``, and the
    LightGBM settings a network does not use are dropped."""
    if isinstance(params.get("learner"), str):
        params = dict(params, learner={"model": params["learner"], "max_epochs": NEURAL_DFS_EPOCHS})
        for key in ("lr", "num_leaves", "n_estimators"):
            params.pop(key, None)
    return params


def _dfs_decode_params(params: dict) -> dict:
    """A stored DFS configuration as estimator parameters: a dict ``learner`` is a
    :class:`~skrel.estimators.TorchFrameLearner`'s settings."""
    if isinstance(params.get("learner"), dict):
        from . import TorchFrameLearner  # the torch extra, only for a neural learner

        params = dict(params, learner=TorchFrameLearner(**params["learner"]))
    return params


def _unit(lo: float, hi: float):
    return uniform(loc=lo, scale=hi - lo)


FAMILIES: dict[str, FamilySpec] = {
    "baseline": FamilySpec(
        name="baseline",
        module="skrel.estimators.baseline",
        cls="BaselineEstimator",
        description="LightGBM on the entity table's own columns (the anchor every family is compared to)",
        test_params={"n_estimators": 20},
        boosted=True,
        budget_param="n_estimators",
        search_space={"lr": loguniform(0.01, 0.3), "num_leaves": [15, 31, 63]},
        bank_configs=2,
    ),
    "dfs": FamilySpec(
        name="dfs",
        module="skrel.estimators.dfs",
        cls="DFSEstimator",
        description="deep feature synthesis (SQL aggregates over related rows) then LightGBM or a neural network",
        test_params={"max_depth": 1},
        boosted=True,
        loss_surface=_dfs_loss_surface,
        budget_param="n_estimators",
        # the learner's own settings (lr, num_leaves, n_estimators) apply to LightGBM; the neural
        # learners use TorchFrameLearner's defaults (tune them with learner=TorchFrameLearner(...)).
        # "ft_transformer" is left out: attention over every DFS feature (hundreds of tokens per row)
        # is out of a CPU's reach (benchmarks/results/dfs_neural.md, its FT-Transformer paragraph).
        search_space={
            "learner": [None, "mlp", "resnet"],
            "max_depth": [1, 2],
            "windows": [[30, 90, 365], [7, 30, 90, 365], [90, 365]],
            "lr": loguniform(0.01, 0.3),
            "num_leaves": [15, 31, 63],
            "n_estimators": randint(200, 2001),
        },
        bank_configs=8,
        bank_params=_dfs_bank_params,
        decode_params=_dfs_decode_params,
    ),
    "rdl": FamilySpec(
        name="rdl",
        module="skrel.estimators.rdl",
        cls="RDLEstimator",
        description="relational deep learning: a temporal GraphSAGE over the database's rows (RelBench's recipe)",
        test_params={"channels": 8, "max_epochs": 2, "fanouts": [8, 4], "encoder_layers": 1,
                     "min_steps_per_epoch": None},
        torch=True,
        loss_surface=True,
        budget_param="max_epochs",
        search_space={
            "channels": [64, 128],
            "num_layers": [1, 2, 3],
            "lr": loguniform(1e-3, 1e-2),
            "fanouts": [32, 64, 128],
            "aggr": ["sum", "mean", "max"],
            "dropout": _unit(0.0, 0.5),
            "max_epochs": [5, 10, 20],
        },
        bank_configs=8,
    ),
    "relgt": FamilySpec(
        name="relgt",
        module="skrel.estimators.relgt",
        cls="RelGTEstimator",
        description="relational graph transformer: local tokens sampled around each row plus global centroids",
        test_params={"channels": 8, "max_epochs": 2, "tokens": 12, "centroids": 8},
        torch=True,
        loss_surface=True,
        budget_param="max_epochs",
        search_space={
            "tokens": [50, 100, 200],
            "channels": [32, 64, 128],
            "num_layers": [1, 2],
            "lr": loguniform(1e-4, 1e-2),
            "dropout": _unit(0.0, 0.5),
            "max_epochs": [10, 20, 40],
        },
        bank_configs=4,
    ),
}

#: Former name of :data:`FAMILIES` (the same dict), kept for code written against it.
MODELS = FAMILIES

#: The entry-point group through which other packages register families.
ENTRY_POINT_GROUP = "skrel.families"


def load_entry_point_families() -> list[str]:
    """Register the families other packages declare, and return their names.

    A package declares its family in its ``pyproject.toml``::

        [project.entry-points."skrel.families"]
        recency = "my_package.family:SPEC"     # a FamilySpec (or a callable returning one)

    and skrel finds it when its registry is first imported: ``skrel fit --model recency``, ``skrel
    bank extend --families recency`` and :class:`~skrel.relatron.RelatronSelector` see it, with
    no edit to skrel. A family already registered under that name is kept (the first one wins);
    an entry point that fails to load or gives something else than a :class:`FamilySpec` is
    skipped with a warning naming it.
    """
    import warnings
    from importlib.metadata import entry_points

    names = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            spec = ep.load()
            spec = spec() if callable(spec) and not isinstance(spec, FamilySpec) else spec
            if not isinstance(spec, FamilySpec):
                raise TypeError(f"it gives a {type(spec).__name__}, not a FamilySpec")
        except Exception as exc:  # a broken plugin must not break skrel
            warnings.warn(f"skrel family entry point {ep.name!r} ({ep.value}) was not loaded: {exc}", stacklevel=2)
            continue
        FAMILIES.setdefault(spec.name, spec)
        names.append(spec.name)
    return names


load_entry_point_families()


def family_names() -> list[str]:
    """The registered family names, sorted."""
    return sorted(FAMILIES)


def get_spec(name: str) -> FamilySpec:
    """The :class:`FamilySpec` of ``name``; a ValueError lists the registered names otherwise."""
    try:
        return FAMILIES[name]
    except (KeyError, TypeError):
        raise ValueError(f"Unknown model {name!r}; choose one of {family_names()}.") from None


def get_model_class(name: str) -> type:
    """The estimator class of the named family (its module is imported now)."""
    return get_spec(name).get_class()


def make_model(name: str, params: dict | None = None, **extra):
    """An estimator of the named family: the one factory of every estimator skrel builds (the
    command line, the bank, the selector, the benchmarks).

    ``params`` may be a stored (JSON) configuration (a bank record's, a command line's
    ``--set``): the family's :attr:`FamilySpec.decode_params` turns it into estimator
    parameters. ``extra`` are set as they are. Both are checked by ``set_params``.

    Examples
    --------
    >>> make_model("baseline", n_estimators=20).get_params()["n_estimators"]
    20
    >>> make_model("dfs", {"max_depth": 1}, random_state=0).get_params()["max_depth"]
    1
    """
    return get_spec(name).make(params, **extra)


# ---------------------------------------------------------------------- vocabulary
class Term(NamedTuple):
    """One concept of ``docs/parameters.md``: its parameter name, retired aliases, and who must have it.

    ``required`` is a tuple of kinds (:data:`KINDS`): ``("all",)`` for every family, ``("torch",)``,
    ``("boosted",)``, or ``("boosted", "torch")`` for a name both kinds must have.
    """

    name: str
    aliases: frozenset
    required: tuple


def _t(name, aliases=(), required=("all",)):
    return Term(name, frozenset(aliases), tuple(required))


VOCABULARY: dict[str, Term] = {
    # every family
    "task type": _t("task_type", {"objective", "problem_type"}),
    "horizon": _t("horizon"),
    "early stopping": _t("n_iter_no_change", {"patience", "early_stopping_rounds"}),
    "validation fraction": _t("validation_fraction", {"valid_fraction", "val_fraction"}),
    "threads": _t("n_jobs", {"num_threads", "threads", "n_threads"}),
    "random state": _t("random_state", {"seed"}),
    "verbosity": _t("verbose"),
    # gradient-boosted families
    "boosting rounds": _t("n_estimators", {"num_boost_round", "n_rounds"}, ("boosted",)),
    "learning rate": _t("lr", {"learning_rate", "eta"}, ("boosted", "torch")),
    "leaves": _t("num_leaves", (), ("boosted",)),
    # torch families
    "epochs": _t("max_epochs", {"epochs", "n_epochs"}, ("torch",)),
    "weight decay": _t("weight_decay", (), ("torch",)),
    "batch size": _t("batch_size", (), ("torch",)),
    "max steps per epoch": _t("max_steps_per_epoch", (), ("torch",)),
    "min steps per epoch": _t("min_steps_per_epoch", (), ("torch",)),
    "gradient clipping": _t("gradient_clip_value", {"grad_clip"}, ("torch",)),
    "hidden width": _t("channels", {"hidden_channels", "hidden_dim", "d_model"}, ("torch",)),
    "layers": _t("num_layers", {"layers", "n_layers"}, ("torch",)),
    "encoder layers": _t("encoder_layers", (), ("torch",)),
    "dropout": _t("dropout", (), ("torch",)),
    "text embedder": _t("text_embedder", (), ("torch",)),
    "column types": _t("stypes", (), ("torch",)),
    "device": _t("device", (), ("torch",)),
    "callbacks": _t("callbacks", (), ("torch",)),
}


def check_vocabulary(params: Iterable[str], *, torch: bool = False, boosted: bool = False,
                     vocabulary: dict[str, Term] | None = None) -> list[str]:
    """What a family's parameter names get wrong against the shared vocabulary.

    Parameters
    ----------
    params : iterable of str
        The family's parameter names (``estimator.get_params(deep=False)``'s keys).
    torch, boosted : bool
        The family's kinds (``FamilySpec.torch``, ``FamilySpec.boosted``).
    vocabulary : dict, optional
        The table to check against; :data:`VOCABULARY` by default.

    Returns
    -------
    problems : list of str
        One sentence per problem (a retired alias used, a required name missing); empty when
        the names conform.

    Examples
    --------
    >>> check_vocabulary(["task_type", "patience"])[:1]
    ["parameter 'patience' is a retired alias of 'n_iter_no_change' (early stopping); rename it"]
    """
    vocabulary = VOCABULARY if vocabulary is None else vocabulary
    params = set(params)
    kinds = {"all"} | ({"torch"} if torch else set()) | ({"boosted"} if boosted else set())
    problems = []
    for concept, term in vocabulary.items():
        for alias in sorted(term.aliases & params):
            problems.append(f"parameter {alias!r} is a retired alias of {term.name!r} ({concept}); rename it")
    for concept, term in vocabulary.items():
        needed_by = [k for k in term.required if k in kinds]
        if needed_by and term.name not in params:
            who = "every family" if needed_by[0] == "all" else f"every {needed_by[0]} family"
            problems.append(f"parameter {term.name!r} ({concept}) is missing; {who} must have it")
    return problems
