"""One self-contained HTML page that explains a model-selection run.

``write_report(selector, path)`` reads a fitted selector's attributes (duck-typed: any object with
the attributes below will do, and this module never imports the selector) and writes one HTML file:
inline CSS, PNG figures embedded as base64 ``data:`` URIs, no JavaScript, nothing fetched. Sections:

1. ``choice``: the selected family and why, the meta-classifier's probabilities, the nearest bank
   tasks;
2. ``task-map``: a PCA projection of the bank's standardised task embeddings, coloured by each
   task's best family, with this task marked;
3. ``homophily``: adjusted (and raw) label homophily per meta-path;
4. ``candidates``: every candidate's validation score (and test score of the top-k when ``X_test``
   and ``y_test`` are given);
5. ``landscape``: the loss surfaces of the top-k candidates;
6. ``learning-curves``: the best estimator's per-epoch history (torch families);
7. ``features``: the best estimator's top 20 features (DFS, baseline).

Attributes read (each one may be missing or None: its section then says why it is omitted):
``task_embedding_``, ``bank_tasks_``, ``embedding_columns_``, ``nearest_tasks_``, ``macro_proba_``,
``selected_family_``, ``macro_reason_``, ``search_results_``, ``top_candidates_``,
``best_estimator_``, ``metric_``, ``task_name_``.

Each figure is an ``<img id="fig-<section>" alt="<section>: ...">`` inside
``<section id="sec-<section>">``. Figures are drawn on :class:`matplotlib.figure.Figure` with the
Agg canvas directly, never through ``pyplot``: the caller's backend and pyplot's figure registry
are left alone, and nothing stays open once a figure is encoded.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..utils import import_optional

__all__ = ["write_report", "render_report", "SECTIONS"]

logger = logging.getLogger(__name__)

#: (id, title) of every section, in page order. Figure ids are ``fig-<id>``, section ids ``sec-<id>``.
SECTIONS = (
    ("choice", "1. The choice"),
    ("task-map", "2. Where this task sits among the bank's tasks"),
    ("homophily", "3. Label homophily per meta-path"),
    ("candidates", "4. Every candidate of the search"),
    ("landscape", "5. Loss landscapes of the top candidates"),
    ("learning-curves", "6. Learning curves of the best estimator"),
    ("features", "7. Top features of the best estimator"),
)

_TOP_FEATURES = 20
_DOT = " \u00b7 "
_DPI = 100

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ccc;
       padding-bottom: 0.2em; margin-top: 2em; } h3 { font-size: 1.05em; }
.meta { color: #666; font-size: 0.9em; } .omitted { color: #8a5a00; background: #fff7e6; padding: 0.4em 0.7em;
       border-left: 3px solid #e0a030; } .summary { background: #f3f6fa; padding: 0.6em 1em; border-radius: 4px; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.88em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.55em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.selected td { background: #eaf5ea; font-weight: 600; }
img { max-width: 100%; height: auto; display: block; margin: 0.6em 0; }
code { background: #f4f4f4; padding: 0 0.2em; } nav ol { columns: 2; }
"""


class _Omit(Exception):
    """Raised by a section's builder: the section is replaced by 'omitted because <reason>'."""


# ------------------------------------------------------------------------------------------- helpers
def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def _mpl(text) -> str:
    """A string safe as matplotlib text: ``$`` would otherwise start mathtext."""
    return str(text).replace("$", r"\$")


def _get(selector, name):
    """The attribute, or None when it is missing."""
    return getattr(selector, name, None)


def _require(selector, name, what: str = ""):
    """The attribute, or :class:`_Omit` when it is missing, None or empty."""
    value = _get(selector, name)
    if value is None:
        raise _Omit(f"the selector has no {name}{what}")
    if isinstance(value, (pd.DataFrame, dict, list, tuple)) and len(value) == 0:
        raise _Omit(f"the selector's {name} is empty{what}")
    return value


def _fmt(value, digits: int = 4) -> str:
    """A number with ``digits`` significant digits; NaN/None as an en dash; other values as text."""
    if value is None:
        return "\u2013"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else ""
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(float(value)):
            return "\u2013"
        v = float(value)
        if v.is_integer() and 1e3 <= abs(v) < 1e15:
            return f"{int(v):,}"
        if v != 0 and (abs(v) >= 1e6 or abs(v) < 1e-3):
            return f"{v:.{digits - 1}e}"
        return f"{v:.{digits}g}"
    return str(value)


def _params_text(params) -> str:
    if isinstance(params, dict):
        return ", ".join(f"{k}={v!r}" for k, v in params.items()) or "(defaults)"
    return "" if params is None else str(params)


def _is_num(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _table(columns, rows, *, row_classes=None) -> str:
    """An HTML table; every cell escaped, numbers right-aligned."""
    out = ["<table><thead><tr>", *(f"<th>{_esc(c)}</th>" for c in columns), "</tr></thead><tbody>"]
    for i, row in enumerate(rows):
        cls = row_classes[i] if row_classes else ""
        out.append(f'<tr class="{_esc(cls)}">' if cls else "<tr>")
        for cell in row:
            num = _is_num(cell)
            out.append(f'<td class="num">{_esc(_fmt(cell))}</td>' if num else f"<td>{_esc(_fmt(cell))}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _new_figure(width: float, height: float):
    import_optional("matplotlib", "The selector's report")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _img(fig, section: str, alt: str) -> str:
    """Encode ``fig`` as an embedded PNG ``<img>``, then release it."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight", pad_inches=0.1, metadata={"Software": None})
    finally:
        fig.clf()
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return (f'<img id="fig-{_esc(section)}" alt="{_esc(section)}: {_esc(alt)}" '
            f'src="data:image/png;base64,{data}">')


def _family_colours(*groups) -> dict:
    """One fixed colour per family name, the same in every figure."""
    from matplotlib import colormaps

    names = sorted({str(n) for g in groups for n in g
                    if n is not None and not (isinstance(n, float) and math.isnan(n))})
    cmap = colormaps["tab10"]
    return {n: cmap(i % 10) for i, n in enumerate(names)}


def _metric_direction(metric) -> str:
    from ..metrics import METRICS

    spec = METRICS.get(metric) if isinstance(metric, str) else None
    if spec is None:
        return ""
    return "higher is better" if spec.greater_is_better else "lower is better"


# ------------------------------------------------------------------------------------------- sections
def _section_choice(sel, ctx) -> str:
    family = _get(sel, "selected_family_")
    reason = _get(sel, "macro_reason_")
    parts = []
    if family is None:
        parts.append('<p class="omitted">The selected family is omitted because the selector has no '
                     "selected_family_ (it is probably not fitted).</p>")
    else:
        parts.append(f"<p>Selected family: <strong>{_esc(family)}</strong>"
                     + (f", by: {_esc(reason)}" if reason else "") + ".</p>")

    proba = _get(sel, "macro_proba_")
    if not proba:
        parts.append('<p class="omitted">The meta-classifier\'s probabilities are omitted because the selector '
                     "has no macro_proba_.</p>")
    else:
        items = sorted(((str(k), float(v)) for k, v in proba.items()), key=lambda kv: -kv[1])
        fig = _new_figure(6.5, 0.45 * len(items) + 1.2)
        ax = fig.add_subplot()
        names = [k for k, _ in items][::-1]
        values = [v for _, v in items][::-1]
        colours = [ctx["colours"].get(n, "grey") for n in names]
        bars = ax.barh([_mpl(n) for n in names], values, color=colours,
                       edgecolor=["black" if n == str(family) else "none" for n in names], linewidth=1.5)
        for b, v in zip(bars, values):
            ax.text(b.get_width() + 0.01, b.get_y() + b.get_height() / 2, f"{v:.3f}", va="center", fontsize=9)
        ax.set_xlim(0, max(1.0, max(values) * 1.15))
        ax.set_xlabel("probability (meta-classifier)")
        ax.set_title("Which family the meta-classifier expects to win" + (f" (selected: {_mpl(family)})"
                                                                           if family is not None else ""))
        ax.spines[["top", "right"]].set_visible(False)
        parts.append(_img(fig, "choice", "macro probabilities per family"))

    nearest = _get(sel, "nearest_tasks_")
    if nearest is None or len(nearest) == 0:
        parts.append('<p class="omitted">The nearest bank tasks are omitted because the selector has no '
                     "nearest_tasks_.</p>")
    else:
        bank = _get(sel, "bank_tasks_")
        extra = [c for c in ("group", "source", "task_type") if bank is not None and c in bank.columns]
        table = nearest.copy()
        if extra and "task_id" in table.columns and "task_id" in bank.columns:
            info = bank.drop_duplicates("task_id").set_index("task_id")[extra]
            table = table.join(info, on="task_id", rsuffix="_bank")
        cols = [c for c in ("task_id", "distance", "best_family", *extra) if c in table.columns]
        cols += [c for c in table.columns if c not in cols and not str(c).endswith("_bank")]
        parts.append("<h3>Nearest bank tasks (closest first)</h3>")
        parts.append(_table(cols, table[cols].itertuples(index=False, name=None)))
    return "".join(parts)


def _embedding_matrix(sel):
    """(bank frame, columns, bank matrix, this task's row) over the usable embedding columns."""
    bank = _require(sel, "bank_tasks_", ", so there is no bank to place the task in")
    columns = _require(sel, "embedding_columns_", ", so the embedding columns are unknown")
    emb = _require(sel, "task_embedding_", ", so the task cannot be placed")
    columns = [c for c in columns if c in bank.columns]
    if not columns:
        raise _Omit("none of embedding_columns_ is a column of bank_tasks_")
    M = bank[columns].to_numpy(dtype=np.float64)
    keep = np.isfinite(M).any(axis=0)
    columns = [c for c, k in zip(columns, keep) if k]
    if not columns:
        raise _Omit("every embedding column of bank_tasks_ is NaN")
    M = M[:, keep]
    x = np.array([float(emb.get(c[4:] if c.startswith("emb:") else c, np.nan)) for c in columns])
    return bank, columns, M, x


def _section_task_map(sel, ctx) -> str:
    from sklearn.decomposition import PCA
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    bank, columns, M, x = _embedding_matrix(sel)
    if len(bank) < 2:
        raise _Omit(f"the bank has {len(bank)} task; a projection needs at least 2")
    imputer = SimpleImputer(strategy="median").fit(M)
    scaler = StandardScaler().fit(imputer.transform(M))
    Z = scaler.transform(imputer.transform(M))
    z = scaler.transform(imputer.transform(x[None, :]))
    k = min(2, Z.shape[0], Z.shape[1])
    pca = PCA(n_components=k, random_state=0).fit(Z)
    P, p = pca.transform(Z), pca.transform(z)[0]
    if k == 1:
        P, p = np.column_stack([P, np.zeros(len(P))]), np.array([p[0], 0.0])
    var = pca.explained_variance_ratio_

    fig = _new_figure(9.0, 5.5)
    ax = fig.add_subplot()
    best = bank["best_family"].astype(str) if "best_family" in bank.columns else pd.Series(["?"] * len(bank))
    source = bank["source"].astype(str) if "source" in bank.columns else pd.Series(["bank"] * len(bank))
    markers = {"real": "o", "synthetic": "^"}
    for fam in sorted(best.unique()):
        for src in sorted(source.unique()):
            m = (best.to_numpy() == fam) & (source.to_numpy() == src)
            if m.any():
                ax.scatter(P[m, 0], P[m, 1], c=[ctx["colours"].get(fam, "grey")], marker=markers.get(src, "s"),
                           s=45, alpha=0.8, edgecolors="white", linewidths=0.5,
                           label=_mpl(f"{fam} ({src})"))
    nearest = _get(sel, "nearest_tasks_")
    if nearest is not None and len(nearest) and "task_id" in nearest.columns and "task_id" in bank.columns:
        ids = bank["task_id"].astype(str).to_numpy()
        for tid in nearest["task_id"].astype(str).head(5):
            idx = np.flatnonzero(ids == tid)
            if len(idx):
                ax.annotate(_mpl(tid), P[idx[0]], fontsize=7, xytext=(4, 4), textcoords="offset points",
                            color="#444")
    name = _get(sel, "task_name_") or "this task"
    ax.scatter([p[0]], [p[1]], marker="*", s=380, c="gold", edgecolors="black", linewidths=1.2, zorder=5,
               label=_mpl(f"{name} (this task)"))
    ax.set_xlabel(f"PC1 ({var[0]:.0%} of variance)")
    ax.set_ylabel(f"PC2 ({var[1]:.0%} of variance)" if k > 1 else "(one component)")
    ax.set_title("Bank tasks in the task-embedding space (PCA of standardised embeddings)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="best family (source)",
              title_fontsize=8)
    parts = [
        f"<p>{len(bank)} bank tasks, {len(columns)} embedding columns (standardised over the bank; a value "
        "missing for a task is imputed with the bank's median). Colour: the family that won on that task; "
        "the star is this task; the five nearest bank tasks are labelled.</p>",
        _img(fig, "task-map", "PCA projection of the bank's task embeddings"),
    ]
    # Loadings: which embedding entries the axes are made of.
    rows = []
    for i in range(k):
        top = np.argsort(-np.abs(pca.components_[i]))[:4]
        rows.append([f"PC{i + 1}", "; ".join(f"{columns[j][4:] if columns[j].startswith('emb:') else columns[j]} "
                                            f"({pca.components_[i, j]:+.2f})" for j in top)])
    parts.append("<h3>What the axes are made of (largest loadings)</h3>")
    parts.append(_table(["axis", "embedding entries (loading)"], rows))
    # Where this task is unusual.
    zs = z[0]
    observed = np.isfinite(x)
    varies = scaler.var_ > 0  # a column constant over the bank has no z-score
    order = [j for j in np.argsort(-np.abs(zs)) if observed[j] and varies[j]][:10]
    if order:
        median = np.nanmedian(M, axis=0)
        rows = [[columns[j][4:] if columns[j].startswith("emb:") else columns[j], float(x[j]), float(median[j]),
                 float(zs[j])] for j in order]
        parts.append("<h3>Where this task differs most from the bank (|z-score|)</h3>")
        parts.append(_table(["embedding entry", "this task", "bank median", "z-score"], rows))
    n_missing = int((~observed).sum())
    if n_missing:
        parts.append(f"<p class=\"meta\">{n_missing} embedding column(s) have no value for this task "
                     "(imputed with the bank's median).</p>")
    return "".join(parts)


def _homophily_table(emb) -> pd.DataFrame:
    """One row per meta-path, a column per statistic, from ``homophily[<path>].<stat>`` entries."""
    rows: dict[str, dict] = {}
    for key, value in emb.items():
        if not key.startswith("homophily[") or "]." not in key:
            continue
        path, _, stat = key[len("homophily["):].rpartition("].")
        rows.setdefault(path, {})[stat] = float(value)
    return pd.DataFrame.from_dict(rows, orient="index")


def _section_homophily(sel, ctx) -> str:
    emb = _require(sel, "task_embedding_", ", so there are no homophily entries")
    table = _homophily_table(emb)
    if table.empty or "adjusted" not in table.columns:
        raise _Omit("the task embedding has no per-meta-path homophily entries (the homophily component was "
                    "not computed, or the entity table has no self-loop meta-path)")
    table = table.sort_values("adjusted", na_position="first")
    n = len(table)
    fig = _new_figure(9.0, 0.5 * n + 1.6)
    ax = fig.add_subplot()
    adj = table["adjusted"].to_numpy()
    se = table["adjusted_se"].to_numpy() if "adjusted_se" in table.columns else np.zeros(n)
    se = np.where(np.isfinite(se) & (se > 0), se, 0.0)
    shown = np.where(np.isfinite(adj), adj, 0.0)
    labels = [_mpl(p if len(p) <= 70 else p[:33] + "\u2026" + p[-33:]) for p in table.index]
    colours = ["#2b7bba" if v >= 0 else "#c0504d" for v in shown]
    ax.barh(labels, shown, xerr=se if se.any() else None, color=colours, capsize=3)
    ax.axvline(0, color="black", linewidth=0.8)
    span = max(0.05, float(np.nanmax(np.abs(shown))) if n else 0.05)
    for i, (a, h, e) in enumerate(zip(adj, table.get("h", pd.Series(np.nan, index=table.index)),
                                       table.get("edges", pd.Series(np.nan, index=table.index)))):
        edges = f"{int(e):,}" if np.isfinite(e) else "?"
        text = "no edges" if not np.isfinite(a) else f"h = {_fmt(h, 3)}, {edges} edges"
        ax.text(max(shown[i], 0) + 0.02 * span, i, text, va="center", fontsize=8)
    ax.set_xlim(min(0.0, float(shown.min())) - 0.1 * span, max(0.0, float(shown.max())) + 0.8 * span)
    ax.set_xlabel("adjusted homophily (0: chance given the degrees; 1: every edge same-label)")
    ax.set_title("Label homophily of the training rows per meta-path")
    ax.spines[["top", "right"]].set_visible(False)
    cols = [c for c in ("h", "a", "adjusted", "adjusted_se", "pearson", "edges", "sample_rate", "hops")
            if c in table.columns]
    display = table.iloc[::-1]
    rows = [[path, *(int(v) if c in ("edges", "hops") and np.isfinite(v) else v for c, v in zip(cols, vals))]
            for path, vals in zip(display.index, display[cols].to_numpy())]
    return "".join([
        "<p>Adjusted homophily corrects the share of same-label edges <code>h</code> for what the label "
        "shares and degrees alone give (<code>a</code>); see <code>docs/selection.md</code>. Error bars: the "
        "standard error when anchors were sampled.</p>",
        _img(fig, "homophily", "adjusted homophily per meta-path"),
        _table(["meta-path", *cols], rows),
    ])


def _test_scores(sel, X_test, y_test):
    """Test score of each of ``top_candidates_`` (None when not asked; a str when scoring failed)."""
    if X_test is None:
        return None
    from ..metrics import evaluate

    top = _get(sel, "top_candidates_") or []
    metric = _get(sel, "metric_")
    scores = []
    for cand in top:
        est = cand.get("estimator") if isinstance(cand, dict) else None
        if est is None or metric is None:
            scores.append("no estimator" if est is None else "no metric_")
            continue
        try:
            scores.append(float(evaluate(est, X_test, y_test, metric)))
        except Exception as exc:  # one broken candidate must not lose the page
            logger.warning("report: scoring top candidate on the test rows failed: %s", exc)
            scores.append(f"failed: {type(exc).__name__}: {exc}")
    return scores


def _same_params(a, b) -> bool:
    try:
        return bool(a == b)
    except Exception:  # e.g. arrays inside params
        return repr(a) == repr(b)


def _section_candidates(sel, ctx) -> str:
    results = _require(sel, "search_results_", ", so there is no search to show")
    metric = _get(sel, "metric_") or "validation score"
    direction = _metric_direction(_get(sel, "metric_"))
    res = results.reset_index(drop=True).copy()
    if "rank" in res.columns:
        res = res.sort_values("rank", kind="stable").reset_index(drop=True)
    res["test"] = np.nan
    tests = ctx["test_scores"]
    top = _get(sel, "top_candidates_") or []
    # Attach each top candidate's test score to its search row (same params, same val).
    if tests is not None:
        for cand, score in zip(top, tests):
            if not isinstance(score, float):
                continue
            for i in range(len(res)):
                if (_same_params(res.at[i, "params"] if "params" in res.columns else None, cand.get("params"))
                        and np.isclose(float(res.at[i, "val"]), float(cand.get("val", np.nan)), equal_nan=True)):
                    res.at[i, "test"] = score
                    break

    n = len(res)
    fig = _new_figure(8.5, min(0.32 * n + 1.8, 14))
    ax = fig.add_subplot()
    y = np.arange(n)[::-1]
    fams = res["family"].astype(str).to_numpy() if "family" in res.columns else np.array(["?"] * n)
    sources = res["source"].astype(str).to_numpy() if "source" in res.columns else np.array([""] * n)
    val = res["val"].to_numpy(dtype=np.float64)
    markers = {"bank": "D", "random": "o"}
    for fam in sorted(set(fams)):
        for src in sorted(set(sources)):
            m = (fams == fam) & (sources == src)
            if m.any():
                ax.scatter(val[m], y[m], c=[ctx["colours"].get(fam, "grey")], marker=markers.get(src, "s"), s=40,
                           label=_mpl(f"{fam}, {src}" if src else fam), zorder=3)
    if "selected" in res.columns:
        s = res["selected"].fillna(False).astype(bool).to_numpy()
        if s.any():
            ax.scatter(val[s], y[s], s=260, facecolors="none", edgecolors="black", linewidths=1.5,
                       label="selected", zorder=4)
    test = res["test"].to_numpy(dtype=np.float64)
    if np.isfinite(test).any():
        t = np.isfinite(test)
        ax.scatter(test[t], y[t], marker="x", c="black", s=50, label="test (top candidates)", zorder=5)
        for yi, a, b in zip(y[t], val[t], test[t]):
            ax.plot([a, b], [yi, yi], color="grey", linewidth=0.8, zorder=2)
    labels = [f"#{int(r)} {f}" if np.isfinite(r) else f for r, f in
              zip(res["rank"].to_numpy(dtype=np.float64) if "rank" in res.columns else np.full(n, np.nan), fams)]
    ax.set_yticks(y, [_mpl(lab) for lab in labels], fontsize=8 if n <= 40 else 6)
    ax.set_xlabel(_mpl(f"{metric} ({direction})" if direction else metric))
    ax.set_title("Validation score of every candidate (ranked)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="best")

    cols = ["rank", "family", "source", "val", *(["test"] if tests is not None else []), "fit_seconds",
            "landscape_flatness", "landscape_p1", "landscape_p2", "landscape_barrier", "selected", "params"]
    cols = [c for c in cols if c in res.columns]
    rows, classes = [], []
    for rec in res[cols].to_dict("records"):
        rows.append([_params_text(rec[c]) if c == "params" else rec[c] for c in cols])
        classes.append("selected" if rec.get("selected") is True or rec.get("selected") is np.True_ else "")
    header = [c.replace("landscape_", "") for c in cols]
    parts = [
        f"<p>{n} candidate(s) fitted; the metric is <code>{_esc(metric)}</code>"
        + (f" ({_esc(direction)})" if direction else "")
        + ". Diamonds: configurations taken from similar bank tasks; circles: sampled at random. The ringed "
        "point is the candidate kept after landscape post-selection.</p>",
        _img(fig, "candidates", "validation score of every candidate"),
        _table(header, rows, row_classes=classes),
    ]
    if tests is not None and top:
        rows = []
        for i, (cand, score) in enumerate(zip(top, tests), start=1):
            est = cand.get("estimator")
            land = cand.get("landscape") or {}
            rows.append([i, type(est).__name__ if est is not None else "\u2013", cand.get("val"),
                         score, land.get("flatness"), _params_text(cand.get("params"))])
        parts.append("<h3>Top candidates on the test rows</h3>")
        parts.append(_table(["#", "estimator", "val", "test", "flatness", "params"], rows))
    elif tests is None:
        parts.append('<p class="meta">No test scores: pass <code>X_test</code> and <code>y_test</code> to '
                     "score the top candidates.</p>")
    return "".join(parts)


def _section_landscape(sel, ctx) -> str:
    top = _require(sel, "top_candidates_", ", so there are no top candidates to show")
    with_surface = [(i, c) for i, c in enumerate(top, start=1)
                    if isinstance(c, dict) and isinstance(c.get("landscape"), dict)
                    and c["landscape"].get("surface") is not None]
    have = {i for i, _ in with_surface}
    without = [(i, c) for i, c in enumerate(top, start=1) if i not in have]
    notes = ""
    if without:
        names = ", ".join(f"#{i} ({type(c.get('estimator')).__name__ if isinstance(c, dict) else '?'})"
                          for i, c in without)
        notes = (f"<p class=\"meta\">No loss surface for {_esc(names)}: gradient-boosted learners have none, "
                 "or it was not computed.</p>")
    if not with_surface:
        raise _Omit("no top candidate has a computed loss surface (gradient-boosted learners have none)")
    n = len(with_surface)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    fig = _new_figure(4.2 * ncols, 3.7 * nrows)
    rows = []
    for k, (i, cand) in enumerate(with_surface):
        land = cand["landscape"]
        S = np.ma.masked_invalid(np.asarray(land["surface"], dtype=np.float64))
        alphas = np.asarray(land.get("alphas", np.linspace(-1, 1, S.shape[0])), dtype=np.float64)
        ax = fig.add_subplot(nrows, ncols, k + 1)
        lo, hi = (float(S.min()), float(S.max())) if S.count() else (0.0, 1.0)
        if not hi > lo:
            hi = lo + 1e-9
        levels = np.linspace(lo, hi, 15)
        cs = ax.contourf(alphas, alphas, S.T, levels=levels, cmap="viridis")
        ax.contour(alphas, alphas, S.T, levels=levels[::2], colors="white", linewidths=0.4, alpha=0.6)
        ax.plot([0], [0], marker="+", color="red", markersize=12, mew=2)
        fig.colorbar(cs, ax=ax, shrink=0.85, label="probe loss")
        est = cand.get("estimator")
        ax.set_title(_mpl(f"#{i} {type(est).__name__}  val={_fmt(cand.get('val'), 4)}\n"
                          f"flatness={_fmt(land.get('flatness'), 3)}"), fontsize=9)
        ax.set_xlabel("direction 1", fontsize=8)
        ax.set_ylabel("direction 2", fontsize=8)
        ax.set_aspect("equal")
        rows.append([i, type(est).__name__, cand.get("val"), land.get("loss"), land.get("p1"), land.get("p2"),
                     land.get("barrier"), land.get("flatness"), land.get("hessian_top")])
    return "".join([
        "<p>The probe loss on a plane through each candidate's trained weights (red cross), spanned by two "
        "filter-normalised random directions. Sharpness (<code>p1</code>, <code>p2</code>, <code>barrier</code>) "
        "is greater when sharper, <code>flatness</code> greater when flatter; compare within one family only "
        "(<code>docs/selection.md</code>, Part 2).</p>",
        _img(fig, "landscape", "loss-landscape contours of the top candidates"),
        _table(["#", "estimator", "val", "loss", "p1", "p2", "barrier", "flatness", "hessian_top"], rows),
        notes,
    ])


def _history_of(est):
    for obj in (est, getattr(est, "learner_", None)):
        hist = getattr(obj, "history_", None) if obj is not None else None
        if hist:
            return obj, hist
    return None, None


def _section_learning_curves(sel, ctx) -> str:
    est = _require(sel, "best_estimator_", ", so there is no refitted model")
    owner, hist = _history_of(est)
    if hist is None:
        raise _Omit(f"the best estimator ({type(est).__name__}) has no per-epoch history_: it is not trained "
                    "by epochs (gradient-boosted learner)")
    frame = pd.DataFrame(list(hist))
    epochs = frame["epoch"].to_numpy() if "epoch" in frame.columns else np.arange(len(frame))
    fig = _new_figure(8.0, 4.2)
    ax = fig.add_subplot()
    drawn = False
    for col, style in (("train_loss", "-o"), ("valid_loss", "--s")):
        if col in frame.columns:
            v = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=np.float64)
            if np.isfinite(v).any():
                ax.plot(epochs, v, style, markersize=4, label=col.replace("_", " "))
                drawn = True
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    handles, labels = ax.get_legend_handles_labels()
    if "valid_score" in frame.columns:
        v = pd.to_numeric(frame["valid_score"], errors="coerce").to_numpy(dtype=np.float64)
        if np.isfinite(v).any():
            ax2 = ax.twinx()
            metric = _get(sel, "metric_") or "score"
            ax2.plot(epochs, v, ":^", color="tab:green", markersize=4, label=_mpl(f"valid {metric}"))
            ax2.set_ylabel(_mpl(f"validation {metric}"))
            h2, l2 = ax2.get_legend_handles_labels()
            handles, labels = handles + h2, labels + l2
            drawn = True
    if not drawn:
        raise _Omit("the best estimator's history_ has no finite loss or score")
    best_epoch = getattr(owner, "best_epoch_", None)
    if best_epoch is not None and best_epoch >= 0:
        ax.axvline(best_epoch, color="grey", linestyle="--", linewidth=0.8)
        handles.append(ax.lines[-1])
        labels.append(f"best epoch ({best_epoch})")
    ax.legend(handles, labels, fontsize=8, loc="best")
    ax.set_title(_mpl(f"Training history of {type(est).__name__}"))
    return (f"<p>{len(frame)} epoch(s). The weights kept are those of the best validation epoch when the "
            "estimator early-stops.</p>" + _img(fig, "learning-curves", "learning curves of the best estimator"))


def _section_features(sel, ctx) -> str:
    est = _require(sel, "best_estimator_", ", so there is no refitted model")
    try:
        imp = est.feature_importances_
    except (AttributeError, TypeError, ValueError) as exc:
        raise _Omit(f"the best estimator ({type(est).__name__}) has no feature importances "
                    f"({type(exc).__name__}: {exc})") from None
    imp = pd.Series(imp) if not isinstance(imp, pd.Series) else imp
    imp = pd.to_numeric(imp, errors="coerce").dropna()
    if imp.empty:
        raise _Omit(f"the best estimator ({type(est).__name__}) reports no features")
    top = imp.reindex(imp.abs().sort_values(ascending=False).index).head(_TOP_FEATURES)
    total = float(imp.abs().sum())
    fig = _new_figure(8.5, 0.3 * len(top) + 1.4)
    ax = fig.add_subplot()
    names = [str(n) if len(str(n)) <= 60 else str(n)[:57] + "\u2026" for n in top.index]
    ax.barh([_mpl(n) for n in names[::-1]], top.to_numpy()[::-1], color="#4c72b0")
    ax.set_xlabel("importance (the learner's own: split counts for LightGBM)")
    ax.set_title(_mpl(f"Top {len(top)} of {len(imp)} features of {type(est).__name__}"))
    ax.tick_params(axis="y", labelsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    rows = [[name, float(v), float(abs(v)) / total if total > 0 else np.nan] for name, v in top.items()]
    return "".join([
        _img(fig, "features", "top features of the best estimator"),
        _table(["feature", "importance", "share"], rows),
    ])


_BUILDERS = {
    "choice": _section_choice,
    "task-map": _section_task_map,
    "homophily": _section_homophily,
    "candidates": _section_candidates,
    "landscape": _section_landscape,
    "learning-curves": _section_learning_curves,
    "features": _section_features,
}


# ------------------------------------------------------------------------------------------- page
def _summary(sel, tests) -> str:
    items = []
    family, reason = _get(sel, "selected_family_"), _get(sel, "macro_reason_")
    if family is not None:
        items.append(f"Selected family <strong>{_esc(family)}</strong>" + (f" ({_esc(reason)})" if reason else ""))
    best = _get(sel, "best_estimator_")
    if best is not None:
        items.append(f"refitted estimator <code>{_esc(type(best).__name__)}</code>")
    results = _get(sel, "search_results_")
    if results is not None and len(results) and "selected" in results.columns:
        chosen = results[results["selected"].fillna(False).astype(bool)]
        if len(chosen):
            row = chosen.iloc[0]
            items.append(f"selected candidate: validation {_esc(_get(sel, 'metric_') or 'score')} = "
                         f"{_esc(_fmt(row.get('val')))} (rank {_esc(_fmt(row.get('rank')))} of {len(results)})")
    top = _get(sel, "top_candidates_") or []
    if tests and top:
        finite = [t for t in tests if isinstance(t, float)]
        if finite:
            items.append(f"test scores of the top-{len(top)}: " + ", ".join(_esc(_fmt(t)) for t in finite))
    emb = _get(sel, "task_embedding_")
    seconds = getattr(emb, "seconds", None) if emb is not None else None
    if seconds:
        items.append(f"task embedding computed in {sum(seconds.values()):.1f} s")
    if not items:
        return ""
    return '<div class="summary"><p>' + "; ".join(items) + ".</p></div>"


def render_report(selector, *, X_test=None, y_test=None) -> str:
    """The report as an HTML string (see :func:`write_report`)."""
    if (X_test is None) != (y_test is None):
        raise ValueError("Pass both X_test and y_test to score the top candidates on test rows, or neither.")
    from .. import __version__

    tests = _test_scores(selector, X_test, y_test)
    families = []
    proba = _get(selector, "macro_proba_") or {}
    families += list(proba)
    for attr in ("bank_tasks_", "nearest_tasks_"):
        frame = _get(selector, attr)
        if frame is not None and "best_family" in getattr(frame, "columns", ()):
            families += frame["best_family"].astype(str).tolist()
    results = _get(selector, "search_results_")
    if results is not None and "family" in getattr(results, "columns", ()):
        families += results["family"].astype(str).tolist()
    if _get(selector, "selected_family_") is not None:
        families.append(str(_get(selector, "selected_family_")))
    ctx = {"colours": _family_colours(families), "test_scores": tests}

    name = _get(selector, "task_name_")
    metric = _get(selector, "metric_")
    emb = _get(selector, "task_embedding_")
    task_type = getattr(emb, "task_type", "") if emb is not None else ""
    title = f"Model selection report: {name}" if name else "Model selection report"
    meta = [f"metric: {metric}" if metric else "", f"task type: {task_type}" if task_type else "",
            f"generated {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')} by skrel {__version__}"]
    body = [f"<h1>{_esc(title)}</h1>",
            f'<p class="meta">{_esc(_DOT.join(m for m in meta if m))}</p>',
            _summary(selector, tests),
            "<nav><ol>" + "".join(f'<li><a href="#sec-{sid}">{_esc(t.split(". ", 1)[1])}</a></li>'
                                  for sid, t in SECTIONS) + "</ol></nav>"]
    for sid, heading in SECTIONS:
        try:
            content = _BUILDERS[sid](selector, ctx)
        except _Omit as why:
            content = f'<p class="omitted">This section is omitted because {_esc(why)}.</p>'
        body.append(f'<section id="sec-{sid}"><h2>{_esc(heading)}</h2>{content}</section>')
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def write_report(selector, path, *, X_test=None, y_test=None) -> Path:
    """Write one self-contained HTML page that explains a fitted selector's choice.

    The page embeds its figures as base64 PNGs and needs no JavaScript or network. A section whose
    attributes are missing or None says why it is omitted instead of failing.

    Parameters
    ----------
    selector : fitted selector
        Any object with (some of) the attributes ``task_embedding_``, ``bank_tasks_``,
        ``embedding_columns_``, ``nearest_tasks_``, ``macro_proba_``, ``selected_family_``,
        ``macro_reason_``, ``search_results_``, ``top_candidates_``, ``best_estimator_``,
        ``metric_``, ``task_name_`` (see the module docstring); typically a fitted
        ``RelatronSelector``.
    path : str or path-like
        The HTML file to write (parent folders are created).
    X_test : RelationalDataset, optional
    y_test : array-like, optional
        Test rows and labels: each of ``top_candidates_`` is scored on them with
        :func:`skrel.metrics.evaluate` and ``metric_``. Give both or neither.

    Returns
    -------
    pathlib.Path
        The path written.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> import tempfile, pathlib
    >>> out = write_report(SimpleNamespace(task_name_="demo"), pathlib.Path(tempfile.mkdtemp()) / "r.html")
    >>> "omitted because" in out.read_text()
    True
    """
    path = Path(path)
    page = render_report(selector, X_test=X_test, y_test=y_test)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    logger.info("report written to %s (%.0f kB)", path, len(page) / 1024)
    return path
