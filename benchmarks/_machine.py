"""The machine description every benchmark writes beside its results."""

from __future__ import annotations

import contextlib
import threading
import time

from skrel.evaluation import cpu_model  # noqa: F401  (re-exported for the benchmarks)


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
