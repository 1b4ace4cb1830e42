"""What machine a measurement was taken on."""

from __future__ import annotations

import os
import platform

__all__ = ["cpu_model", "peak_rss_mb", "describe_machine"]


def cpu_model() -> str:
    """The processor's model name from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux: ``ru_maxrss`` is in kilobytes)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def describe_machine() -> str:
    """One line: processor, cores and memory (e.g. for a benchmark's results file)."""
    try:
        import psutil

        memory = f", {psutil.virtual_memory().total / 2**30:.0f} GiB"
    except ImportError:  # pragma: no cover - psutil is a core dependency
        memory = ""
    return f"{cpu_model()}, {os.cpu_count()} cores{memory}"
