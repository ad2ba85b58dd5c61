"""The paper's Colored MNIST results (Kim et al., CVPR 2019, Fig. 4), copied from
../shared/reference/paper_colored_mnist.csv into ``lnl/resources/paper_colored_mnist.csv``."""
from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

PAPER_CSV = Path(__file__).resolve().parents[1] / "resources" / "paper_colored_mnist.csv"
LEVELS = (0.020, 0.025, 0.030, 0.035, 0.040, 0.045, 0.050)


@lru_cache(maxsize=1)
def paper() -> dict[tuple[str, float], float]:
    """(method, σ² rounded to 3 places) -> the paper's unbiased test accuracy."""
    with open(PAPER_CSV, encoding="utf-8") as stream:
        return {(r["method"], round(float(r["color_var"]), 3)): float(r["test_acc"]) for r in csv.DictReader(stream)}
