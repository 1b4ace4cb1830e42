"""Pickling of estimators that hold a fitted torch module."""

from __future__ import annotations

import io

__all__ = ["TorchModuleState"]


class TorchModuleState:
    """Pickles ``module_`` as a torch state dict beside the estimator's other attributes.

    The module is rebuilt on unpickling from ``self._module_kwargs`` by ``_new_module`` and its
    weights are loaded on the CPU, so a model trained on a GPU loads in a CPU-only process.
    Put it before :class:`~skrel.estimators._base.RelationalEstimator` in the bases.
    """

    def _new_module(self, kwargs: dict):
        raise NotImplementedError

    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: object.__getstate__ may hand out __dict__ itself
        module = state.pop("module_", None)
        if module is not None:
            import torch

            buf = io.BytesIO()
            torch.save(module.state_dict(), buf)
            state["_module_state"] = buf.getvalue()
        return state

    def __setstate__(self, state):
        blob = state.pop("_module_state", None)
        super().__setstate__(state)
        if blob is not None:
            import torch

            with torch.random.fork_rng(devices=[]):
                module = self._new_module(self._module_kwargs)
            module.load_state_dict(torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True))
            self.module_ = module.eval()
