"""Utilities for people who extend skrel.

:mod:`skrel.utils.estimator_checks` is the conformance suite every estimator family passes
(``check_estimator``, ``parametrize_with_checks``), for skrel's families and for families defined
in other packages. Nothing is imported here: ``import skrel.utils`` stays free.
"""
