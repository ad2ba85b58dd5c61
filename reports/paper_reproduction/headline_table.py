"""The headline comparison: the paper's four systems side by side per σ², ours (mean ± std over seeds, n) next to
the paper's row (Kim et al., CVPR 2019, Fig. 4), each cell under two selection rules: `last` (the final epoch;
no unbiased data used) and the `val_unbiased` pick (each run's epoch of best unbiased validation accuracy).

Every system runs the authors' protocol on the authors' data (recipe ``official``, bf16): the 100-epoch
baselines; BlindEye and LNL from them (weights and momentum restored, fresh bias heads); Gray with the
baseline's 100-epoch schedule. Which runs make each row is fixed here (folder and settings), not chosen on test
data; a run found in two folders (a copy) counts once. Read-only; prints Markdown. From the repository root:

    .venv/bin/python reports/paper_reproduction/headline_table.py > reports/paper_reproduction/headline_table.md
"""
import csv
import statistics as st
from pathlib import Path

from lnl.report.load import from_folders
from lnl.report.tables import select_epoch

ROOT = Path(__file__).resolve().parent  # reports/paper_reproduction
# (row label, method, settings every run of the row has, folders under ROOT whose records/ hold them)
ROWS = (
    ("Baseline (100 epochs)", "baseline", {"epochs": 100}, ("lnl40", "baseline100")),
    ("BlindEye α 0.1 (20 epochs)", "blind_eye", {"epochs": 20, "alpha": 0.1}, ("baseline100",)),
    ("BlindEye α 0.3 (20 epochs; validation's α)", "blind_eye", {"epochs": 20, "alpha": 0.3}, ("blind_eye_alpha100",)),
    ("Gray (100 epochs)", "gray", {"epochs": 100}, ("baseline100",)),
    ("LNL λ 0.01, μ 0.1 (40 epochs)", "lnl", {"epochs": 40, "lambda": 0.01, "mu": 0.1}, ("lnl40",)),
)
PAPER = {(r["method"], round(float(r["color_var"]), 3)): float(r["test_acc"])
         for r in csv.DictReader(open(ROOT.parents[1] / "lnl" / "resources" / "paper_colored_mnist.csv"))}
LEVELS = sorted({cv for _, cv in PAPER})


def runs_of(method: str, settings: dict, folders: tuple) -> dict:
    """σ² -> seed -> (test at the last epoch, test at the best val_unbiased epoch), finished runs only."""
    out = {}
    for r in from_folders([f"{ROOT}/{folder}/records" for folder in folders]):
        c = r["config"]
        if r["status"] != "finished" or c["method"] != method or c.get("recipe") != "official" or \
                any(c.get(k) != v for k, v in settings.items()):
            continue
        out.setdefault(round(c["color_var"], 3), {})[c["seed"]] = tuple(
            select_epoch(r["epochs"], rule)["test/acc"] for rule in ("last", "val_unbiased"))
    return out


def cell(values: list, paper: float | None) -> str:
    if not values:
        return "—"
    spread = f" ± {st.stdev(values):.3f}" if len(values) > 1 else ""
    diff = f" ({st.mean(values) - paper:+.3f})" if paper is not None else ""
    return f"{st.mean(values):.3f}{spread}{diff}" + (f" n={len(values)}" if len(values) != 3 else "")


def main() -> None:
    print("| system | rule | " + " | ".join(f"σ²={cv:.3f}" for cv in LEVELS) + " |")
    print("|---|---|" + "---:|" * len(LEVELS))
    for label, method, settings, folders in ROWS:
        runs = runs_of(method, settings, folders)
        for k, rule in enumerate(("`last`", "`val_unbiased` pick")):
            cells = [cell([v[k] for v in runs.get(cv, {}).values()], PAPER.get((method, cv))) for cv in LEVELS]
            print(f"| {label if k == 0 else ''} | {rule} | " + " | ".join(cells) + " |")
        print("| | paper | " + " | ".join(f"{PAPER[(method, cv)]:.4f}" for cv in LEVELS) + " |")


if __name__ == "__main__":
    main()
