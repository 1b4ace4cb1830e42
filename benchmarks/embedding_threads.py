"""The task embedding's path affinity (untrained RDL networks) on one torch thread against more.

    python benchmarks/embedding_threads.py [--path ../shared/data/f1] [--tasks driver-dnf ...]
                                           [--threads 1 2] [--repeats 2] [--render] [--no-save]

``task_embedding(db, task, components=("path_affinity",), n_jobs=k)`` on rel-f1: its forward passes
of small untrained networks run on ``k`` torch threads (``n_jobs=None``, the default, means one).
For each task and each ``k`` of ``--threads`` the component is timed ``--repeats`` times, the thread
counts alternated so that each sees the same machine load; the best time counts. One thread is the
anchor: each row gives its ratio to it, and whether the entries equal the anchor's (within 1e-6).
This is the measurement behind the default of one thread (``skrel/relatron/embedding/_affinity.py``).
Results go to ``benchmarks/results/embedding_threads.{json,md}``.
"""

from __future__ import annotations

import argparse
import sys

from _common import F1_PATH, ResultStore, command_line, machine, machines_line, standard_flags

TASKS = ["driver-dnf", "driver-top3", "driver-position"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", default=str(F1_PATH), help="rel-f1's CSV directory")
    parser.add_argument("--tasks", nargs="+", default=["driver-dnf"], choices=TASKS)
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="torch thread counts (1: the anchor)")
    parser.add_argument("--repeats", type=int, default=2, help="timings of each thread count, alternated; best counts")
    standard_flags(parser, "embedding_threads")
    args = parser.parse_args(argv)
    store = ResultStore(args.out, save=not args.no_save, sort_keys=True)
    if args.render:
        store.write_markdown(render)
        return 0

    import numpy as np

    from skrel.datasets import load_f1
    from skrel.relatron import task_embedding

    threads = [1] + [k for k in args.threads if k != 1]
    db, tasks = load_f1(args.path)
    here = machine("torch")
    store.stamp(here)
    for name in args.tasks:
        seconds = {k: [] for k in threads}
        entries = {}
        for _ in range(args.repeats):
            for k in threads:
                emb = task_embedding(db, tasks[name], components=("path_affinity",), n_jobs=k, random_state=0)
                seconds[k].append(emb.seconds["path_affinity"])
                entries[k] = dict(emb)
        anchor = min(seconds[1])
        for k in threads:
            same = set(entries[k]) == set(entries[1]) and all(
                np.isclose(entries[k][e], entries[1][e], rtol=1e-6, atol=1e-9) for e in entries[1])
            r = {"task": name, "threads": k, "seconds": round(min(seconds[k]), 2),
                 "all_seconds": [round(s, 2) for s in seconds[k]], "ratio_to_one_thread": round(min(seconds[k]) / anchor, 2),
                 "same_entries": bool(same), "machine": here}
            store.runs[f"{name}/{k}"] = r
            print(f"{name:16s} {k} thread(s): {r['seconds']:.2f} s (x{r['ratio_to_one_thread']:.2f} of one thread), "
                  f"same entries: {same}", flush=True)
    store.add_command(command_line("embedding_threads.py", argv))
    store.write(render)
    print(render(store.data))
    return 0


def render(store: dict) -> str:
    lines = [
        "# Task embedding: path affinity on one torch thread and more (rel-f1)",
        "",
        f"{machines_line(store)}. `task_embedding(db, task, components=(\"path_affinity\",), n_jobs=k)`: seconds of "
        "the component, the best of the alternated repeats (all of them in the JSON); ratio to one thread (the "
        "anchor, and the default); whether the entries equal the anchor's within 1e-6. The machine is shared: "
        "more threads pay for cores other jobs hold.",
        "",
        "| task | torch threads | seconds | / one thread | same entries |",
        "|---|---|---|---|---|",
    ]
    for _, r in sorted(store["runs"].items()):
        lines.append(f"| {r['task']} | {r['threads']} | {r['seconds']:.2f} | {r['ratio_to_one_thread']:.2f} | "
                     f"{'yes' if r['same_entries'] else 'no'} |")
    commands = store.get("commands") or ["python benchmarks/embedding_threads.py"]
    lines += ["", "Reproduce: " + ", ".join(f"`{c}`" for c in commands)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
