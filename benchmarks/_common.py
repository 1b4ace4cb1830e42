"""What every benchmark shares: paths, the machine description, the result store and the standard flags.

A benchmark is a script, run from anywhere as ``python benchmarks/NAME.py``; importing this module puts
the repository root first on ``sys.path``, so the checkout's skrel is the one measured.

- :data:`ROOT`, :data:`RESULTS` (``benchmarks/results``), :data:`F1_PATH` (rel-f1's CSVs:
  ``$SKREL_F1_PATH`` or ``../shared/data/f1``);
- :func:`machine`: the one-line machine description stamped on every result row (the processor
  matters: torch scores are bitwise reproducible only on one processor and thread count, see
  :meth:`ResultStore.stamp`); :func:`machine_record`, the same as a dict with the load average;
- :class:`ResultStore`: a benchmark's JSON (rows merged by key across runs, each with its machine,
  the commands that made them) and the markdown rendered from it beside it;
- :func:`standard_flags`: ``--out``, ``--no-save`` and ``--render``, the same in every script;
- :func:`watch_peaks`: poll peak memory (or any gauge) while a block runs.

``benchmarks/README.md`` lists the scripts, their anchors and their result files.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import shlex
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path[:1]:
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"
F1_PATH = Path(os.environ.get("SKREL_F1_PATH", ROOT.parent / "shared" / "data" / "f1"))

__all__ = ["ROOT", "RESULTS", "F1_PATH", "cpu_model", "machine", "machine_record", "ResultStore", "standard_flags",
           "command_line", "watch_peaks", "stamp_rows", "machines_line"]


def cpu_model() -> str:
    """The processor's marketing name, shortened (``"AMD EPYC"``, ``"Intel Xeon"``)."""
    from skrel.utils import cpu_model as skrel_cpu_model

    return skrel_cpu_model()


def _version(module: str) -> str:
    try:
        return importlib.import_module(module).__version__
    except ImportError:
        return "missing"


def machine(*packages: str, memory: bool = False, python: bool = False, torch_threads: bool = False) -> str:
    """``"<cpu>, <n> cores[, <GiB> GiB RAM][, Python x.y.z][, <package> <version>...][, torch threads n]"``.

    Parameters
    ----------
    *packages : str
        Importable modules whose versions matter to the benchmark (``"torch"``, ``"duckdb"``...);
        one not installed reads ``missing``.
    memory : bool, default=False
        Add the machine's total memory.
    python : bool, default=False
        Add the Python version.
    torch_threads : bool, default=False
        Add torch's intra-op thread count (torch results depend on it).
    """
    parts = [cpu_model(), f"{os.cpu_count()} cores"]
    if memory:
        import psutil

        parts.append(f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM")
    if python:
        parts.append(f"Python {platform.python_version()}")
    parts += [f"{name} {_version(name)}" for name in packages]
    if torch_threads:
        import torch

        parts.append(f"torch threads {torch.get_num_threads()}")
    return ", ".join(parts)


def machine_record() -> dict:
    """The machine as a dict: ``cpu``, ``cores``, ``ram_gb``, ``python``, ``platform`` and
    ``load_average_at_start`` (the 1, 5 and 15 minute load: how shared the machine was)."""
    import psutil

    return {"cpu": cpu_model(), "cores": os.cpu_count(), "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "platform": platform.platform(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}


def command_line(script: str, argv=None) -> str:
    """``python benchmarks/<script> <args>``: how to reproduce this run (``argv`` default: ``sys.argv[1:]``)."""
    return shlex.join(["python", f"benchmarks/{script}", *(sys.argv[1:] if argv is None else argv)])


def standard_flags(parser: argparse.ArgumentParser, name: str | None = None, *, render: bool = True,
                   save_alias: bool = False) -> argparse.ArgumentParser:
    """Add the flags every benchmark shares.

    - ``--out PATH`` (when ``name`` is given): the result JSON, default ``benchmarks/results/<name>.json``;
      its markdown is written beside it (``.md``);
    - ``--no-save``: run and print, write no result file;
    - ``--render`` (with ``render``): only rewrite the markdown from the stored JSON.

    ``save_alias`` also accepts ``--save``, which earlier versions of the script needed to write results
    (saving is the default now), so that the commands recorded in old result files still run.
    """
    if name is not None:
        parser.add_argument("--out", default=str(RESULTS / f"{name}.json"), metavar="PATH",
                            help=f"the result JSON, the markdown beside it (default: benchmarks/results/{name}.json)")
    parser.add_argument("--no-save", action="store_true", help="run and print; write no result file")
    if render:
        parser.add_argument("--render", action="store_true", help="only rewrite the markdown from the stored JSON")
    if save_alias:
        parser.add_argument("--save", action="store_true", help=argparse.SUPPRESS)
    return parser


# ---------------------------------------------------------------------- results
def stamp_rows(store: dict, current: str) -> list[str]:
    """Give every stored row without one the store's machine, and return the machines of the
    stored rows that differ from ``current`` (empty when all rows come from this machine).

    A benchmark merges new rows into its stored JSON. RDL and RelGT scores are bitwise
    reproducible only on the same processor and torch thread count (MKL picks its float32
    matmul kernels per processor, and a few rounding differences per step change a 10-epoch
    training trajectory: on rel-f1 driver-top3, seed 0, the same code and data give test AUROC
    78.10 on the Intel Xeon the table was made on and 78.49 on an AMD EPYC), so each row keeps
    the machine it was measured on and a table mixing machines says so.
    """
    legacy = store.get("machine")
    others = set()
    for r in store.get("runs", {}).values():
        if legacy is not None:
            r.setdefault("machine", legacy)
        if r.get("machine") not in (None, current):
            others.add(r["machine"])
    return sorted(others)


def machines_line(store: dict) -> str:
    """``Machine: X`` when every row comes from one machine, else each machine with its row count."""
    counts: dict[str, int] = {}
    for r in store.get("runs", {}).values():
        m = r.get("machine", store.get("machine", "?"))
        counts[m] = counts.get(m, 0) + 1
    if len(counts) <= 1:
        return f"Machine: {next(iter(counts), store.get('machine', '?'))}"
    parts = "; ".join(f"{m} ({n} rows)" for m, n in sorted(counts.items()))
    return (f"Machines (rows measured on different machines are not bitwise comparable; see each row's "
            f"'machine' in the JSON): {parts}")


class ResultStore:
    """A benchmark's results: ``{"runs": {key: row}, ...}`` in a JSON file, merged across runs.

    Parameters
    ----------
    path : str or path-like
        The JSON file (read now when it exists); the markdown goes beside it (``.md``).
    save : bool, default=True
        False (``--no-save``): :meth:`write` writes nothing.
    sort_keys : bool, default=False
        Sort the JSON's keys (the layout the script's existing file has).

    Attributes
    ----------
    data : dict
        The stored results; ``data["runs"]`` maps a row's key to the row.
    """

    def __init__(self, path, *, save: bool = True, sort_keys: bool = False):
        self.path = Path(path)
        self.save = save
        self.sort_keys = sort_keys
        self.data = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.data.setdefault("runs", {})

    @property
    def runs(self) -> dict:
        return self.data["runs"]

    @property
    def markdown_path(self) -> Path:
        return self.path.with_suffix(".md")

    def stamp(self, here: str) -> list[str]:
        """Stamp legacy rows with the store's machine (:func:`stamp_rows`) and warn on stderr when
        stored rows come from another machine than ``here``; returns those machines."""
        others = stamp_rows(self.data, here)
        if others:
            print(f"warning: {self.path} holds rows measured on {others}; this run is on {here!r}. Scores of the "
                  "torch families differ between processors; the table will list both machines.", file=sys.stderr)
        return others

    def add_command(self, command: str) -> None:
        """Record the command of this run in ``data["commands"]`` (once; an old single ``command`` joins them)."""
        commands = self.data.pop("commands", [self.data.pop("command")] if "command" in self.data else [])
        self.data["commands"] = commands + [command] if command not in commands else commands

    def write(self, render=None, *, default=None) -> None:
        """Write the JSON and, with ``render`` (``data -> str``), the markdown; nothing under ``--no-save``."""
        if not self.save:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=1, sort_keys=self.sort_keys, default=default))
        if render is not None:
            self.markdown_path.write_text(render(self.data))

    def write_markdown(self, render) -> Path:
        """Rewrite only the markdown from the stored JSON (``--render``)."""
        if not self.path.exists():
            raise SystemExit(f"--render: no stored results at {self.path}; run the benchmark first.")
        self.markdown_path.write_text(render(self.data))
        return self.markdown_path


# ---------------------------------------------------------------------- measuring
@contextlib.contextmanager
def watch_peaks(**samplers):
    """Poll while the block runs: ``name=(callable, seconds between calls)``, one thread each.

    Yields a dict holding, per name, the largest value its callable returned (called once on
    entry, then every interval until the block ends).
    """
    peaks = {name: fn() for name, (fn, _) in samplers.items()}
    done = threading.Event()

    def poll(name, fn, interval):
        while not done.wait(interval):
            peaks[name] = max(peaks[name], fn())

    threads = [threading.Thread(target=poll, args=(name, fn, every), daemon=True)
               for name, (fn, every) in samplers.items()]
    for th in threads:
        th.start()
    try:
        yield peaks
    finally:
        done.set()
        for th in threads:
            th.join()
        for name, (fn, _) in samplers.items():
            peaks[name] = max(peaks[name], fn())
