"""Build the performance bank that ships with skrel: ``skrel bank build`` with this repository's paths.

    python benchmarks/build_bank.py [--jobs 2] [--only synthetic] [--records benchmarks/results/bank]
                                    [--backend dask [--scheduler tcp://host:8786]] [--out PATH]

The same command as ``skrel bank build`` (``skrel.relatron.bank_cli.build_bank``; its ``--help``
lists every option), with the defaults of the shipped bank: records (one JSON line per fit,
resumable) under ``benchmarks/results/bank``, rel-f1 from ``../shared/data/f1`` and the bank written
to ``skrel/relatron/bank.parquet``. Any option given here overrides those defaults (e.g. ``--out
/tmp/bank.parquet`` to leave the shipped bank untouched).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# this directory holds benchmarks/distributed.py, which would shadow the dask.distributed package
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

RECORDS = ROOT / "benchmarks" / "results" / "bank"
F1 = ROOT.parent / "shared" / "data" / "f1"


def main(argv=None) -> int:
    from skrel.cli import main as skrel_main
    from skrel.relatron.bank import BANK_PATH

    argv = sys.argv[1:] if argv is None else list(argv)
    # argparse keeps the last value of a repeated option: the caller's come after these defaults
    return skrel_main(["bank", "build", "--records", str(RECORDS), "--f1", str(F1), "--out", str(BANK_PATH), *argv])


if __name__ == "__main__":
    raise SystemExit(main())
