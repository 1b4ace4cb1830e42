"""Loss-landscape metrics of a fitted torch-family estimator, as scikit-learn scorers.

How flat is the minimum a trained network sits in? Relatron (ICLR 2026, arXiv 2602.22552) uses
three measures of the loss surface around the trained weights to pick, among the top candidates
by validation score, the one whose minimum is flattest; this module reimplements them from their
definitions, adds the top eigenvalue of the full Hessian, and exposes everything through
scikit-learn's interfaces (a scorer for ``scoring=``, a callable for ``GridSearchCV(refit=...)``).

The loss surface. For weights :math:`\\theta^*` and a fixed probe set of batches
:math:`B_1..B_m` (:meth:`~skrel.estimators._torch.TorchRelationalEstimator.probe_batches`),
:math:`L(\\theta) = \\frac1m \\sum_b \\ell(f_\\theta(B_b), y_b)` with the network's own training
loss :math:`\\ell` and dropout off (``module.eval()``). Two random directions :math:`d_1, d_2`
(standard normal, normalised to the weights: see :func:`landscape_metrics`) span the plane
:math:`f(a, b) = L(\\theta^* + a d_1 + b d_2)`, evaluated on a ``grid x grid`` lattice over
:math:`[-r, r]^2`. From it:

- ``p1``: the largest finite-difference gradient norm :math:`\\max \\lVert\\nabla f\\rVert` on the grid;
- ``p2``: the largest eigenvalue of the 2x2 finite-difference Hessian of :math:`f` at the centre;
- ``barrier``: the largest rise :math:`\\max_t f(t u) - f(0)` along the eight rays from the centre
  (both axes, both diagonals, both ways);
- ``flatness``: :math:`-\\tfrac13[\\log(1+p_1) + \\log(1+p_2^+) + \\log(1+\\text{barrier})]`, greater is flatter;
- ``hessian_top``: the top eigenvalue of the Hessian of :math:`L` over every trainable weight, by
  power iteration on Hessian-vector products (double backward through :func:`torch.autograd.grad`).

The estimator is never left modified: the weights are copied back bit for bit and the module's
train/eval mode restored, even when a measurement fails. Definitions as formulas: docs/selection.md (part 2).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import weakref
from numbers import Integral, Real

import numpy as np
from sklearn.exceptions import NotFittedError
from sklearn.utils import check_random_state

from ..utils import import_optional

import_optional("torch", "skrel.relatron.landscape (loss landscapes of torch networks)")

import torch  # noqa: E402

__all__ = [
    "METRICS",
    "LandscapeRefit",
    "LandscapeScorer",
    "has_loss_surface",
    "landscape_metrics",
    "landscape_refit",
    "landscape_sign",
    "make_landscape_scorer",
]

logger = logging.getLogger("skrel")

#: The metric names :func:`landscape_metrics` computes and :func:`make_landscape_scorer` accepts.
METRICS = ("p1", "p2", "hessian_top", "barrier", "flatness")
_SURFACE = ("p1", "p2", "barrier", "flatness")  # read off the grid of losses
_RAYS = ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (1, -1), (-1, 1), (-1, -1))
_EPS = 1e-12


# ---------------------------------------------------------------------------- capability
def has_loss_surface(estimator) -> bool:
    """Whether ``estimator`` is a learner whose loss surface can be measured.

    True for the torch families (:class:`~skrel.estimators.RDLEstimator`,
    :class:`~skrel.estimators.RelGTEstimator`) and for :class:`~skrel.estimators.DFSEstimator`
    with a neural learner (``learner="mlp"``, ``"resnet"``, ``"ft_transformer"``): their registry
    entry says so (``FamilySpec.loss_surface``, a callable for DFS) and they have
    ``probe_batches``; fitted ones also have ``module_``. An unregistered estimator qualifies by
    having ``probe_batches``. Gradient-boosted learners (LightGBM in ``BaselineEstimator`` and in
    ``DFSEstimator`` by default) have no differentiable loss surface.
    """
    from ..estimators.registry import FAMILIES

    for spec in FAMILIES.values():  # a registered family says so in its entry
        if type(estimator).__name__ == spec.cls and type(estimator).__module__ == spec.module:
            return spec.has_loss_surface(estimator) and hasattr(estimator, "probe_batches")
    return hasattr(estimator, "probe_batches")


def _check_estimator(estimator) -> None:
    if not has_loss_surface(estimator):
        raise TypeError(
            f"{type(estimator).__name__} has no loss surface: landscape metrics need a fitted torch-family "
            "estimator (RDLEstimator, RelGTEstimator, or DFSEstimator with learner='mlp', 'resnet' or "
            "'ft_transformer': learners with `probe_batches` and a trained `module_`). Gradient-boosted learners "
            "(BaselineEstimator, DFSEstimator with LightGBM) have none; score them with a prediction metric instead."
        )
    if not hasattr(estimator, "module_"):
        raise NotFittedError(
            f"This {type(estimator).__name__} instance is not fitted yet; call fit before measuring its loss landscape."
        )


def _check_params(grid, radius, directions, probe_batches, hessian_iters, metrics):
    if not isinstance(grid, Integral) or isinstance(grid, bool) or grid < 3 or grid % 2 == 0:
        raise ValueError(f"grid must be an odd int >= 3 (the centre must be a grid point), got {grid!r}.")
    if not isinstance(radius, Real) or isinstance(radius, bool) or not radius > 0 or not math.isfinite(radius):
        raise ValueError(f"radius must be a positive finite number, got {radius!r}.")
    if directions not in ("filter", "tensor"):
        raise ValueError(f"directions must be 'filter' or 'tensor', got {directions!r}.")
    if probe_batches is not None and (not isinstance(probe_batches, Integral) or isinstance(probe_batches, bool)
                                      or probe_batches < 1):
        raise ValueError(f"probe_batches must be a positive int or None (all batches), got {probe_batches!r}.")
    if not isinstance(hessian_iters, Integral) or isinstance(hessian_iters, bool) or hessian_iters < 1:
        raise ValueError(f"hessian_iters must be a positive int, got {hessian_iters!r}.")
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown landscape metrics {unknown}; choose among {list(METRICS)}.")


# ---------------------------------------------------------------------------- building blocks
def _seed(random_state) -> int:
    """An int seed: ``random_state`` itself when it is an int, else one draw from it."""
    if isinstance(random_state, Integral) and not isinstance(random_state, bool):
        return int(random_state)
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def _trainable(module) -> list:
    return [p for p in module.parameters() if p.requires_grad and p.numel() > 0]


def _random_direction(params, generator, mode: str) -> list:
    """One standard-normal direction, normalised to the weights.

    ``"filter"`` (Li et al. 2018): for each parameter with two or more dimensions, every filter
    ``d[i]`` (slice along the first dimension: an output row of a linear layer, a channel of a
    convolution, a row of an embedding table) is rescaled to the norm of the matching weight
    filter, ``d[i] <- d[i] * ||w[i]|| / ||d[i]||``; one-dimensional parameters (biases, norm
    scales and shifts) get a zero direction, so they stay at their trained values.
    ``"tensor"``: every parameter, one-dimensional ones included, is rescaled as a whole,
    ``d <- d * ||w|| / ||d||``.
    """
    out = []
    for p in params:
        w = p.detach()
        d = torch.randn(w.shape, generator=generator, dtype=w.dtype)
        if mode == "filter":
            if w.dim() <= 1:
                d.zero_()
            else:
                wn = w.reshape(w.shape[0], -1).norm(dim=1)
                dn = d.reshape(d.shape[0], -1).norm(dim=1)
                d = d * (wn / dn.clamp_min(_EPS)).view(-1, *([1] * (w.dim() - 1)))
        else:
            d = d * (w.norm() / d.norm().clamp_min(_EPS))
        out.append(d.to(w.device))
    return out


def _probe_loss(module, batches):
    """Mean over the probe batches of the module's own loss."""
    total = 0.0
    for batch in batches:
        total = total + module.loss(module(batch), batch.y)
    return total / len(batches)


def _dot(xs, ys) -> torch.Tensor:
    return sum((x.double() * y.double()).sum() for x, y in zip(xs, ys))


def _surface(module, params, origin, d1, d2, batches, alphas) -> np.ndarray:
    """``f(a, b) = L(theta* + a d1 + b d2)`` for every pair of ``alphas`` (rows: a, columns: b)."""
    n = len(alphas)
    out = np.empty((n, n))
    with torch.no_grad():
        for i, a in enumerate(alphas):
            for j, b in enumerate(alphas):
                for p, w, u, v in zip(params, origin, d1, d2):
                    p.copy_(w + float(a) * u + float(b) * v)
                out[i, j] = float(_probe_loss(module, batches))
    return out


def _surface_metrics(surface: np.ndarray, alphas: np.ndarray) -> dict:
    h = float(alphas[1] - alphas[0])
    c = len(alphas) // 2
    ga, gb = np.gradient(surface, h, h, edge_order=2)
    p1 = float(np.max(np.sqrt(ga**2 + gb**2)))
    f0 = surface[c, c]
    h11 = (surface[c + 1, c] - 2 * f0 + surface[c - 1, c]) / h**2
    h22 = (surface[c, c + 1] - 2 * f0 + surface[c, c - 1]) / h**2
    h12 = (surface[c + 1, c + 1] - surface[c + 1, c - 1] - surface[c - 1, c + 1] + surface[c - 1, c - 1]) / (4 * h**2)
    plane = np.array([[h11, h12], [h12, h22]])
    p2 = float(np.linalg.eigvalsh(plane)[-1]) if np.isfinite(plane).all() else float("nan")
    rises = []
    for si, sj in _RAYS:
        ray = np.array([surface[c + k * si, c + k * sj] for k in range(c + 1)])
        rises.append(float(np.max(ray) - f0))
    barrier = max(rises)
    flatness = -(math.log1p(p1) + math.log1p(max(p2, 0.0)) + math.log1p(max(barrier, 0.0))) / 3.0
    return {"p1": p1, "p2": p2, "barrier": barrier, "flatness": float(flatness), "hessian_plane": plane,
            "ray_rises": np.array(rises)}


def _power_iteration(hvp, params, generator, iters: int, tol: float, shift: float = 0.0):
    """Dominant eigenvalue of ``H - shift I`` (largest in magnitude) and the iterations used."""
    v = [torch.randn(p.shape, generator=generator, dtype=p.dtype).to(p.device) for p in params]
    norm = float(torch.sqrt(_dot(v, v)))
    v = [x / norm for x in v]
    lam, it = 0.0, 0
    for it in range(1, iters + 1):
        hv = hvp(v)
        if shift:
            hv = [h - shift * x for h, x in zip(hv, v)]
        new = float(_dot(v, hv))  # Rayleigh quotient, ||v|| = 1
        norm = float(torch.sqrt(_dot(hv, hv)))
        if norm == 0.0 or not math.isfinite(norm):
            return (0.0 if norm == 0.0 else float("nan")), it
        v = [x / norm for x in hv]
        converged = it > 1 and abs(new - lam) <= tol * max(abs(new), _EPS)
        lam = new
        if converged:
            break
    return lam, it


def _math_attention():
    """Context: :func:`torch.nn.functional.scaled_dot_product_attention` on its math backend (twice
    differentiable); a no-op on torch versions without :mod:`torch.nn.attention`."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # pragma: no cover - torch < 2.3
        return contextlib.nullcontext()
    return sdpa_kernel(SDPBackend.MATH)


def _hessian_top(module, params, batches, generator, iters: int, tol: float):
    """Top (largest algebraic) Hessian eigenvalue of the probe loss, by power iteration.

    The gradient is built once with ``create_graph=True``; each Hessian-vector product is one
    more backward pass through it, ``Hv = d(g . v)/d theta``. Power iteration finds the eigenvalue
    largest in magnitude, ``lam``; when it is negative (a saddle or a maximum along some
    direction), a second run on ``H - lam I`` finds the top one as ``lam + mu``. Attention runs
    on PyTorch's math kernel here: the fused scaled-dot-product kernels have no double backward.
    """
    with torch.enable_grad(), _math_attention():
        loss = _probe_loss(module, batches)
        if not loss.requires_grad:
            return 0.0, 0
        grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
        pairs = [(i, g) for i, g in enumerate(grads) if g is not None and g.requires_grad]

        def hvp(v):
            out = [torch.zeros_like(p) for p in params]
            if not pairs:
                return out
            dot = sum((g * v[i]).sum() for i, g in pairs)
            hv = torch.autograd.grad(dot, [params[i] for i, _ in pairs], retain_graph=True, allow_unused=True)
            for (i, _), h in zip(pairs, hv):
                if h is not None:
                    out[i] = h.detach()
            return out

        lam, n = _power_iteration(hvp, params, generator, iters, tol)
        if lam < 0:
            mu, m = _power_iteration(hvp, params, generator, iters, tol, shift=lam)
            lam, n = lam + mu, n + m
    return lam, n


# ---------------------------------------------------------------------------- public measurement
def landscape_metrics(estimator, X, y, *, grid=11, radius=1.0, directions="filter", probe_batches=4,
                      random_state=0, hessian_iters=20, hessian_tol=1e-3, metrics=None) -> dict:
    """Loss-landscape metrics of a fitted torch-family estimator around its trained weights.

    The loss is the estimator's own training loss, averaged over a fixed probe set of batches of
    ``(X, y)`` (``estimator.probe_batches(X, y, max_batches=probe_batches)``), with dropout off.
    Two random directions span a plane through the trained weights; the loss on a
    ``grid x grid`` lattice of that plane gives ``p1``, ``p2``, ``barrier`` and ``flatness``;
    power iteration on Hessian-vector products gives ``hessian_top``. The weights are restored
    bit for bit afterwards (predictions are unchanged).

    Parameters
    ----------
    estimator : fitted RDLEstimator, RelGTEstimator or other torch-family estimator
        Anything with ``probe_batches(X, y, max_batches)`` and a fitted ``module_`` whose
        ``module_(batch)`` gives raw outputs and ``module_.loss(raw, batch.y)`` a scalar loss.
    X : RelationalDataset
        The probe rows (validation rows, typically).
    y : array-like of shape (n,)
        Their labels, in the encoding passed to ``fit``.
    grid : odd int >= 3, default=11
        Lattice points per direction; the centre (the trained weights) is the middle point.
    radius : float, default=1.0
        The lattice covers ``[-radius, radius]^2`` in units of the normalised directions (1.0 moves
        each filter by its own norm).
    directions : {"filter", "tensor"}, default="filter"
        ``"filter"``: each filter (slice along the first dimension) of each direction tensor is
        rescaled to the norm of the matching weight filter (Li et al., 2018), and
        one-dimensional parameters (biases, normalisation scales) get zero directions.
        ``"tensor"``: every parameter tensor, one-dimensional ones included, is rescaled to the
        norm of its weight tensor.
    probe_batches : int or None, default=4
        Probe batches (the first ones of ``X``'s evaluation batches); ``None``: all of them.
    random_state : int, RandomState instance or None, default=0
        Seeds the directions and the power iteration's start; same value, same numbers.
    hessian_iters : int, default=20
        Power-iteration steps at most (each one Hessian-vector product over the probe batches).
    hessian_tol : float, default=1e-3
        Stop when the eigenvalue estimate changes by less than this fraction.
    metrics : iterable of str or None, default=None
        Compute only these of :data:`METRICS` (``None``: all). The grid of losses is evaluated only
        when one of ``p1``, ``p2``, ``barrier``, ``flatness`` is asked for; power iteration only for
        ``hessian_top``. Metrics not computed are NaN.

    Returns
    -------
    dict
        ``p1``, ``p2``, ``hessian_top``, ``barrier``, ``flatness`` (floats; sharpness for the
        first four, greater is sharper; ``flatness`` greater is flatter); ``loss`` (the probe loss at
        the trained weights); ``surface`` (ndarray ``(grid, grid)``, ``surface[i, j] = L(theta* +
        alphas[i] d1 + alphas[j] d2)``, or None); ``alphas`` (ndarray ``(grid,)``);
        ``hessian_plane`` (the 2x2 finite-difference Hessian at the centre, or None);
        ``ray_rises`` (the rise along each of the eight rays: +a, -a, +b, -b, then the
        diagonals (+,+), (+,-), (-,+), (-,-)); ``hessian_iterations``; ``n_probe_batches``,
        ``n_probe_rows``, ``n_params``, ``seconds``; and the settings used.

    Raises
    ------
    TypeError
        When the estimator has no loss surface (gradient-boosted learners).
    sklearn.exceptions.NotFittedError
        When it is not fitted.

    Notes
    -----
    ``p2`` is read at the centre of the grid with the central second differences of step
    ``h = 2 radius / (grid - 1)``; ``p1`` uses :func:`numpy.gradient` (central differences
    inside, second-order one-sided ones on the edges). ``flatness`` combines the three surface
    metrics on a log scale so none dominates by its units:
    ``-(log1p(p1) + log1p(max(p2, 0)) + log1p(max(barrier, 0))) / 3``.

    ``hessian_top`` is the exact second derivative autograd sees: piecewise-linear parts (ReLU,
    the L1 loss of regression heads) count as linear, so on an L1 regression it can be near 0
    where the finite-difference ``p2`` is large.

    Examples
    --------
    >>> est = RDLEstimator(max_epochs=3).fit(db, task)  # doctest: +SKIP
    >>> X_val, y_val = task.split(db, "val")  # doctest: +SKIP
    >>> m = landscape_metrics(est, X_val, y_val, grid=7, radius=0.5)  # doctest: +SKIP
    >>> m["p1"], m["p2"], m["barrier"], m["flatness"], m["hessian_top"]  # doctest: +SKIP
    """
    _check_estimator(estimator)
    wanted = tuple(METRICS if metrics is None else metrics)
    _check_params(grid, radius, directions, probe_batches, hessian_iters, wanted)
    t0 = time.perf_counter()
    if y is None:
        raise ValueError("landscape metrics need the labels y of the probe rows (the loss needs targets).")
    batches = estimator.probe_batches(X, y, max_batches=probe_batches)
    if not batches:
        raise ValueError("X gives no probe batches; pass at least one row.")
    module = estimator.module_
    params = _trainable(module)
    generator = torch.Generator().manual_seed(_seed(random_state))
    alphas = np.linspace(-radius, radius, grid)
    origin = [p.detach().clone() for p in params]
    was_training = module.training
    out = {m: float("nan") for m in METRICS}
    out.update(surface=None, hessian_plane=None, ray_rises=None, hessian_iterations=0)
    module.eval()
    try:
        # both directions are drawn first, always, so the power iteration's start does not depend on `metrics`
        d1 = _random_direction(params, generator, directions)
        d2 = _random_direction(params, generator, directions)
        with torch.no_grad():
            out["loss"] = float(_probe_loss(module, batches))
        if any(m in _SURFACE for m in wanted):
            surface = _surface(module, params, origin, d1, d2, batches, alphas)
            out["surface"] = surface
            out.update(_surface_metrics(surface, alphas))
        if "hessian_top" in wanted:
            with torch.no_grad():
                for p, w in zip(params, origin):
                    p.copy_(w)
            out["hessian_top"], out["hessian_iterations"] = _hessian_top(module, params, batches, generator,
                                                                         hessian_iters, hessian_tol)
    finally:
        with torch.no_grad():
            for p, w in zip(params, origin):
                p.copy_(w)
        module.train(was_training)
    for m in METRICS:
        if m not in wanted:
            out[m] = float("nan")
    out.update(
        alphas=alphas, grid=int(grid), radius=float(radius), directions=directions,
        n_probe_batches=len(batches), n_probe_rows=int(sum(len(b.y) for b in batches)),
        n_params=int(sum(p.numel() for p in params)), random_state=random_state,
        seconds=time.perf_counter() - t0,
    )
    logger.debug("landscape of %s: %s in %.2fs", type(estimator).__name__,
                 {m: out[m] for m in wanted}, out["seconds"])
    return out


# ---------------------------------------------------------------------------- scorer
def landscape_sign(metric: str) -> int:
    """The sign that makes ``metric`` greater-is-flatter: +1 for ``flatness``, -1 for the
    sharpness metrics (``p1``, ``p2``, ``hessian_top``, ``barrier``)."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {list(METRICS)}, got {metric!r}.")
    return 1 if metric == "flatness" else -1


# One entry per fitted estimator (weakly held): the metrics last computed for it, so several
# scorers over the same surface (p1, p2, barrier, flatness in one scoring dict) evaluate it once.
_LAST = weakref.WeakKeyDictionary()


def _cached_metrics(estimator, X, y, group: tuple, kwargs: dict) -> dict:
    key = (id(getattr(estimator, "module_", None)), id(X), id(y), group, tuple(sorted(kwargs.items())))
    try:
        hit = _LAST.get(estimator)
    except TypeError:  # not weak-referenceable
        hit = None
    if hit is not None and hit[0] == key:
        return hit[1]
    result = landscape_metrics(estimator, X, y, metrics=group, **kwargs)
    try:
        _LAST[estimator] = (key, result)
    except TypeError:
        pass
    return result


class LandscapeScorer:
    """A scikit-learn scorer ``(estimator, X, y) -> float`` from one loss-landscape metric.

    Greater is better: ``flatness`` as it is, the sharpness metrics (``p1``, ``p2``,
    ``hessian_top``, ``barrier``) negated. Build it with :func:`make_landscape_scorer`.

    Parameters
    ----------
    metric : {"p1", "p2", "hessian_top", "barrier", "flatness"}
    **kwargs
        Passed to :func:`landscape_metrics` (``grid``, ``radius``, ``directions``,
        ``probe_batches``, ``random_state``, ``hessian_iters``, ``hessian_tol``).
    """

    def __init__(self, metric="flatness", **kwargs):
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {list(METRICS)}, got {metric!r}.")
        if "metrics" in kwargs:
            raise TypeError("make_landscape_scorer takes one metric= ; build one scorer per metric.")
        _check_params(kwargs.get("grid", 11), kwargs.get("radius", 1.0), kwargs.get("directions", "filter"),
                      kwargs.get("probe_batches", 4), kwargs.get("hessian_iters", 20), (metric,))
        self.metric = metric
        self.kwargs = kwargs

    @property
    def sign(self) -> int:
        """+1 for ``flatness``, -1 for the sharpness metrics."""
        return landscape_sign(self.metric)

    def __call__(self, estimator, X, y=None, **kwargs) -> float:
        if kwargs:
            logger.debug("LandscapeScorer ignores %s", sorted(kwargs))
        _check_estimator(estimator)
        group = ("hessian_top",) if self.metric == "hessian_top" else _SURFACE
        return self.sign * float(_cached_metrics(estimator, X, y, group, self.kwargs)[self.metric])

    def __repr__(self) -> str:
        args = "".join(f", {k}={v!r}" for k, v in self.kwargs.items())
        return f"make_landscape_scorer(metric={self.metric!r}{args})"


def make_landscape_scorer(metric="flatness", **kwargs) -> LandscapeScorer:
    """A scikit-learn scorer from a loss-landscape metric; greater is better (flatter).

    Use it as ``scoring=`` in :class:`~sklearn.model_selection.GridSearchCV`,
    :func:`~sklearn.model_selection.cross_validate` and friends, alone or in a dict next to a
    prediction metric. Each fold's fitted estimator is measured on that fold's validation rows.
    Scorers with the same ``kwargs`` share one evaluation of the loss grid per fitted model.

    Parameters
    ----------
    metric : {"p1", "p2", "hessian_top", "barrier", "flatness"}, default="flatness"
        ``flatness`` is returned as is; the sharpness metrics are negated.
    **kwargs
        Settings of :func:`landscape_metrics` (``grid``, ``radius``, ``directions``,
        ``probe_batches``, ``random_state``, ``hessian_iters``, ``hessian_tol``).

    Returns
    -------
    LandscapeScorer
        Raises :class:`TypeError` when called on an estimator with no loss surface
        (gradient-boosted learners); the torch families have one.

    Examples
    --------
    >>> from sklearn.model_selection import GridSearchCV  # doctest: +SKIP
    >>> scoring = {"auc": "roc_auc", "p1": make_landscape_scorer("p1", grid=7),
    ...            "p2": make_landscape_scorer("p2", grid=7), "barrier": make_landscape_scorer("barrier", grid=7)}
    >>> search = GridSearchCV(RDLEstimator(), {"lr": [1e-3, 1e-2]}, cv=TemporalSplit(2, gap=task.window),
    ...                       scoring=scoring, refit=landscape_refit(metric_key="auc"))  # doctest: +SKIP
    """
    return LandscapeScorer(metric, **kwargs)


# ---------------------------------------------------------------------------- refit
class LandscapeRefit:
    """``GridSearchCV(refit=...)`` callable: validation top-k, then a weighted vote with flatness.

    See :func:`landscape_refit`.
    """

    def __init__(self, top_k=10, weights=(0.4, 0.2, 0.2, 0.2), metric_key="score",
                 landscape_keys=("p1", "p2", "barrier")):
        if not isinstance(top_k, Integral) or isinstance(top_k, bool) or top_k < 1:
            raise ValueError(f"top_k must be a positive int, got {top_k!r}.")
        landscape_keys = (landscape_keys,) if isinstance(landscape_keys, str) else tuple(landscape_keys)
        weights = tuple(float(w) for w in weights)
        if len(weights) != 1 + len(landscape_keys):
            raise ValueError(
                f"weights has {len(weights)} entries; it needs one for the validation metric {metric_key!r} and one "
                f"per landscape key {list(landscape_keys)}: {1 + len(landscape_keys)} in all."
            )
        if any(w < 0 or not math.isfinite(w) for w in weights):
            raise ValueError(f"weights must be finite and non-negative, got {weights}.")
        self.top_k = int(top_k)
        self.weights = weights
        self.metric_key = metric_key
        self.landscape_keys = landscape_keys

    def votes(self, cv_results) -> tuple[np.ndarray, np.ndarray]:
        """The top-k candidate indices (best validation first) and their weighted votes."""
        columns = [self.metric_key, *self.landscape_keys]
        missing = [c for c in columns if f"mean_test_{c}" not in cv_results]
        if missing:
            have = sorted(k[len("mean_test_"):] for k in cv_results if k.startswith("mean_test_"))
            raise KeyError(
                f"cv_results_ has no mean_test_ column for {missing} (it has {have}). Use a scoring dict with these "
                "names, e.g. {'score': 'roc_auc', 'p1': make_landscape_scorer('p1'), ...}, or set metric_key= and "
                "landscape_keys= to its names."
            )
        val = np.asarray(cv_results[f"mean_test_{self.metric_key}"], dtype=float)
        finite = np.flatnonzero(np.isfinite(val))
        if not len(finite):
            raise ValueError(f"every candidate's mean_test_{self.metric_key} is NaN; no candidate to refit.")
        order = finite[np.argsort(-val[finite], kind="stable")]
        top = order[: self.top_k]
        vote = np.zeros(len(top))
        for w, c in zip(self.weights, columns):
            vote += w * _minmax(np.asarray(cv_results[f"mean_test_{c}"], dtype=float)[top])
        return top, vote

    def choose(self, scores, landscapes) -> int:
        """The candidate to keep, from each candidate's validation score and loss landscape.

        Parameters
        ----------
        scores : sequence of float
            Validation scores, greater is better (a scikit-learn scorer's values).
        landscapes : sequence of dict
            :func:`landscape_metrics` of each candidate, as measured (sharpness greater is
            sharper; each of ``landscape_keys`` is turned greater-is-flatter here).

        Returns
        -------
        int
            The index of the chosen candidate, as :meth:`__call__` over the equivalent
            ``cv_results_``.
        """
        if len(scores) != len(landscapes):
            raise ValueError(f"scores has {len(scores)} entries but landscapes {len(landscapes)}; give one of each "
                             "per candidate.")
        columns = {f"mean_test_{self.metric_key}": [float(v) for v in scores]}
        for key in self.landscape_keys:
            columns[f"mean_test_{key}"] = [landscape_sign(key) * float(m[key]) for m in landscapes]
        return self(columns)

    def __call__(self, cv_results) -> int:
        top, vote = self.votes(cv_results)
        best = int(top[int(np.argmax(vote))])  # ties: the first, i.e. the better validation score
        logger.info("landscape_refit: candidate %d of top-%d %s (votes %s)", best, len(top), top.tolist(),
                    np.round(vote, 4).tolist())
        return best

    def __repr__(self) -> str:
        return (f"landscape_refit(top_k={self.top_k}, weights={self.weights}, metric_key={self.metric_key!r}, "
                f"landscape_keys={self.landscape_keys})")


def _minmax(values: np.ndarray) -> np.ndarray:
    """Min-max normalise to [0, 1] over the finite values; NaN -> 0 (the worst).

    Equal finite values get 0 (the column adds nothing), or 1 when some values are NaN (they beat those)."""
    out = np.zeros(len(values))
    ok = np.isfinite(values)
    if ok.any():
        lo, hi = values[ok].min(), values[ok].max()
        if hi > lo:
            out[ok] = (values[ok] - lo) / (hi - lo)
        elif not ok.all():
            out[ok] = 1.0
    return out


def landscape_refit(top_k=10, weights=(0.4, 0.2, 0.2, 0.2), metric_key="score",
                    landscape_keys=("p1", "p2", "barrier")) -> LandscapeRefit:
    """A ``GridSearchCV(refit=...)`` callable: Relatron's loss-landscape post-selection.

    Among the ``top_k`` candidates by the validation metric (``mean_test_<metric_key>``), each
    column (the validation metric, then each landscape scorer ``mean_test_<key>``, all greater
    is better) is min-max normalised over those candidates to ``[0, 1]``; the candidate with the
    largest weighted sum ``sum_c weights[c] * norm_c`` is refitted. Ties go to the better
    validation score. A NaN landscape value counts as the worst (0; the finite values of a column
    otherwise constant then count 1); a column constant over the candidates adds nothing.

    Parameters
    ----------
    top_k : int, default=10
        Candidates kept by validation score before the vote.
    weights : sequence of float, default=(0.4, 0.2, 0.2, 0.2)
        Weights of the validation metric, then of each landscape key.
    metric_key : str, default="score"
        Name of the validation metric in the scoring dict.
    landscape_keys : sequence of str, default=("p1", "p2", "barrier")
        Names of the landscape scorers (:func:`make_landscape_scorer`) in the scoring dict.

    Returns
    -------
    LandscapeRefit
        Called with ``cv_results_``, returns the index of the candidate to refit.

    Examples
    --------
    >>> refit = landscape_refit(top_k=2)
    >>> refit({"mean_test_score": [0.80, 0.79, 0.70], "mean_test_p1": [-3.0, -1.0, 0.0],
    ...        "mean_test_p2": [-2.0, -1.0, 0.0], "mean_test_barrier": [-1.0, -0.5, 0.0]})
    1
    """
    return LandscapeRefit(top_k=top_k, weights=weights, metric_key=metric_key, landscape_keys=landscape_keys)
