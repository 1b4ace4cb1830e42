"""Estimators over RelationalDataset: import the family you need from its module
(``skrel.estimators.baseline``, ``.dfs``, ``.rdl``, ``.relgt``), or from ``skrel`` lazily."""
