"""Where LNL's test errors come from: accuracy by the palette mean each test digit was drawn around.

For each finished run folder given (record.json + final.pt), rebuilds the network as `lnl-evaluate` does,
predicts the unbiased test split and prints, per drawn palette mean (the test digit's color id, 0-9):
how many test digits took it, the accuracy on them, and how many of them were predicted as the class that
owns that color in training (a color shortcut) although their label is another. Read-only.
Run: .venv/bin/python reports/paper_reproduction/lnl40/errors_by_color.py RUN_DIR [RUN_DIR ...] [--set KEY=VALUE]
(--set: data overrides as lnl-evaluate takes them, e.g. color_bounds=resample to score on another test draw).
"""
import argparse
import sys
from pathlib import Path

import numpy as np

from lnl.rescore import overridden_config, predictions_on_test
from lnl.config import ConfigError, parse_pairs
from lnl.records import read_record

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("runs", nargs="+", type=Path)
parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE")
args = parser.parse_args()
data_cache: dict = {}
for folder in args.runs:
    record = read_record(folder)
    try:
        cfg = overridden_config(record, parse_pairs(args.set, "--set"))
    except ConfigError as err:
        sys.exit(f"error: {err}")
    pred, y, color = predictions_on_test(folder, cfg, record, data_cache)
    print(f"{record['run_id']}: test accuracy {np.mean(pred == y):.4f}")
    print("  color id  digits  accuracy  predicted as the color's own class (label differs)")
    for c in range(10):
        m = color == c
        shortcut = int(np.sum((pred[m] == c) & (y[m] != c)))
        print(f"  {c:8d}  {m.sum():6d}  {np.mean(pred[m] == y[m]):8.4f}  {shortcut:6d}")
    wrong = pred != y
    taken = int(np.sum(wrong & (pred == color)))
    print(f"  errors {int(wrong.sum())}, of which predicted as the class owning the drawn color: {taken}")
