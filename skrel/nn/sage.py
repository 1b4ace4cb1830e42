"""Heterogeneous GraphSAGE in pure torch (no torch-scatter / torch-sparse).

Hamilton et al., "Inductive Representation Learning on Large Graphs" (NeurIPS 2017), in the
heterogeneous form of RelBench's ``HeteroGraphSAGE`` (PyG ``HeteroConv`` of ``SAGEConv`` per edge
type, summed): for every layer and node type ``t``,

.. math::

    h_i' = \mathrm{ReLU}\Big(\mathrm{LayerNorm}_t\Big(\sum_{(s, r, t)} W^{l}_{srt}
           \operatorname{aggr}_{j \in N_{srt}(i)} h_j + b_{srt} + W^{r}_{srt} h_i\Big)\Big)

with ``aggr`` one of sum, mean, max (scatter via ``index_add_`` / ``scatter_reduce_``).

Layer trimming: given per-hop node and edge counts of a sampled subgraph (nodes and edges stored
hop by hop), layer ``l`` of ``L`` only computes the nodes at hops ``< L - l`` from the edges of
hops ``<= L - l`` (PyG's ``trim_to_layer``), so the last layer touches only the seeds.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .encoders import module_key

__all__ = ["HeteroSAGE", "aggregate"]

_AGGRS = ("sum", "mean", "max")


def aggregate(x_src: Tensor, src: Tensor, dst: Tensor, num_dst: int, aggr: str = "sum") -> Tensor:
    """Aggregate ``x_src[src]`` into ``num_dst`` rows by ``dst``.

    Shapes: ``x_src`` (N_src, C), ``src`` and ``dst`` (E,) int64 -> (num_dst, C); rows without
    incoming edges are zero.
    """
    msg = x_src.index_select(0, src)
    out = x_src.new_zeros(num_dst, x_src.size(1))
    if aggr == "sum":
        return out.index_add_(0, dst, msg)
    if aggr == "mean":
        out = out.index_add_(0, dst, msg)
        deg = torch.bincount(dst, minlength=num_dst).clamp_(min=1).to(x_src.dtype)
        return out / deg.unsqueeze(1)
    if aggr == "max":
        out = out.scatter_reduce(0, dst.unsqueeze(1).expand_as(msg), msg, reduce="amax", include_self=False)
        return out
    raise ValueError(f"aggr must be one of {_AGGRS}, got {aggr!r}.")


class HeteroSAGE(nn.Module):
    r"""Stacked heterogeneous SAGE layers with per-type LayerNorm and ReLU.

    Parameters
    ----------
    node_types : list of str
    edge_types : list of (src, rel, dst)
    channels : int
    num_layers : int, default=2
    aggr : {"sum", "mean", "max"}, default="sum"
        Neighbour aggregation within an edge type (edge types are always summed).

    Shapes
    ------
    ``forward(x_dict {t: (N_t, C)}, edge_index_dict {et: (2, E_et)})`` -> ``{t: (N'_t, C)}``
    where ``N'_t = N_t`` without trimming, else the number of hop-0 nodes of ``t``. Node types
    that receive no edge type keep their input.
    """

    def __init__(self, node_types, edge_types, channels: int, num_layers: int = 2, aggr: str = "sum"):
        super().__init__()
        if aggr not in _AGGRS:
            raise ValueError(f"aggr must be one of {_AGGRS}, got {aggr!r}.")
        self.node_types = list(node_types)
        self.edge_types = [tuple(et) for et in edge_types]
        self.channels = int(channels)
        self.num_layers = int(num_layers)
        self.aggr = aggr
        self._names = {et: module_key(*et) for et in self.edge_types}
        self.lin_l = nn.ModuleList()
        self.lin_r = nn.ModuleList()
        self.norms = nn.ModuleList()
        for _ in range(num_layers):
            self.lin_l.append(nn.ModuleDict({self._names[et]: nn.Linear(channels, channels) for et in self.edge_types}))
            self.lin_r.append(
                nn.ModuleDict({self._names[et]: nn.Linear(channels, channels, bias=False) for et in self.edge_types})
            )
            self.norms.append(nn.ModuleDict({module_key(t): nn.LayerNorm(channels) for t in self.node_types}))
        self.reset_parameters()

    def reset_parameters(self):
        for layer in (*self.lin_l, *self.lin_r, *self.norms):
            for m in layer.values():
                m.reset_parameters()

    def forward(self, x_dict: dict, edge_index_dict: dict, num_sampled_nodes: dict | None = None,
                num_sampled_edges: dict | None = None) -> dict:
        trim = num_sampled_nodes is not None and num_sampled_edges is not None
        L = self.num_layers
        for layer in range(L):
            keep_hops = L - layer  # this layer outputs hops 0..keep_hops-1 and reads edges of hops 1..keep_hops
            out = {}
            for t, x in x_dict.items():
                n_dst = sum(num_sampled_nodes[t][:keep_hops]) if trim else x.size(0)
                if n_dst == 0:
                    continue
                ets = [et for et in self.edge_types if et[2] == t]
                if not ets:
                    out[t] = x[:n_dst]
                    continue
                x_dst = x[:n_dst]
                w_r = sum(self.lin_r[layer][self._names[et]].weight for et in ets)
                h = x_dst @ w_r.t()
                for et in ets:
                    lin_l = self.lin_l[layer][self._names[et]]
                    ei = edge_index_dict.get(et)
                    if ei is not None and trim:
                        ei = ei[:, : sum(num_sampled_edges[et][:keep_hops])]
                    if ei is None or ei.size(1) == 0 or et[0] not in x_dict:
                        h = h + lin_l.bias  # no neighbours: SAGE's lin_l(0)
                        continue
                    h = h + lin_l(aggregate(x_dict[et[0]], ei[0], ei[1], n_dst, self.aggr))
                out[t] = torch.relu(self.norms[layer][module_key(t)](h))
            x_dict = out
        return x_dict
