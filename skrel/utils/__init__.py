"""Helpers every layer of skrel uses, importing nothing else from skrel (the bottom layer, with
:mod:`skrel.metrics`).

- identifier quoting (:func:`quote_identifier`), URLs (:func:`is_url`);
- memory budgets (:func:`parse_memory`, :func:`default_memory_limit`);
- seeds (:func:`seed_from`);
- the one task-type rule (:func:`infer_task_type`, :func:`is_zero_one`) and label checks
  (:func:`check_labels_present`);
- optional dependencies (:func:`import_optional`: one ``ImportError`` naming the extra);
- the machine a measurement ran on (:func:`cpu_model`, :func:`peak_rss_mb`, :func:`describe_machine`).

:mod:`skrel.utils.estimator_checks` is the conformance suite every estimator family passes
(``check_estimator``, ``parametrize_with_checks``), for skrel's families and for families defined in
other packages; it is imported only when asked for.
"""

from ._machine import cpu_model, describe_machine, peak_rss_mb
from ._memory import default_memory_limit, parse_memory
from ._optional import EXTRAS, import_optional
from ._paths import check_directory, is_url
from ._random import seed_from
from ._sql import quote_identifier
from ._task_type import TASK_TYPES, infer_task_type, is_zero_one
from ._validation import check_labels_present

__all__ = ["quote_identifier", "is_url", "check_directory", "parse_memory", "default_memory_limit", "seed_from", "infer_task_type",
           "is_zero_one", "TASK_TYPES", "cpu_model", "peak_rss_mb", "describe_machine",
           "import_optional", "EXTRAS", "check_labels_present"]
