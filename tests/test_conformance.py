"""One conformance suite, run over every registered estimator family and every task kind.

The checks live in :mod:`skrel.utils.estimator_checks`, so that a family defined in another package
runs the very same suite (``docs/adding-a-family.md``, ``tests/test_third_party_family.py``). Every
family in ``skrel.estimators.registry.FAMILIES`` joins by registering; its ``test_params`` keep
these fits small.
"""

from __future__ import annotations

import pytest

from skrel.estimators.registry import family_names
from skrel.utils.estimator_checks import make_test_estimator, parametrize_with_checks

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny networks: one thread is faster


@parametrize_with_checks([make_test_estimator(name) for name in family_names()])
def test_conformance(estimator, check):
    check(estimator)
