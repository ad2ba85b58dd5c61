"""bf16 against fp32 for the headline's LNL recipe at σ² = 0.020 (NOTES item 26), seed by seed.

The issue asks for the ``official`` recipe in fp32 unless bf16 is shown to change nothing on 3 seeds. The
headline's LNL (lnl40: 40 epochs, λ 0.01, μ 0.1, step at 30, from the 100-epoch baselines) ran in bf16 on
CPUs; ``lnl40_fp32/`` runs the same recipe in fp32 from the fp32 100-epoch baselines (H200, item 15). Each
row: one seed, its Baseline's final test accuracy and LNL's test accuracy after 10, 20, 30 and 40 LNL epochs,
and at its ``val_unbiased`` pick, per precision. Unfinished fp32 runs show the epochs they have. A second
table is the issue's σ² = 0.020 table of the recipe ``official`` itself (100 LNL epochs, ×0.1 at 40 and 80),
per seed and precision (bf16: ``baseline100/``; fp32: ``official/``, H200 baselines): LNL at epoch 40, at
the authors' epoch 90, at the last epoch and at the ``val_unbiased`` pick; the same table follows for every
other σ² at which ``baseline100/`` holds a run of that recipe, beside the headline's (lnl40) LNL of the same
seeds. Read-only; prints Markdown. From the repository root::

    .venv/bin/python reports/paper_reproduction/lnl40_fp32/compare.py > reports/paper_reproduction/lnl40_fp32/compare.md
"""
from __future__ import annotations

import statistics as st
from pathlib import Path

from lnl.report.load import from_folders
from lnl.report.tables import select_epoch

HERE = Path(__file__).resolve().parent
FOLDERS = {"bf16": HERE.parent / "lnl40" / "records", "fp32": HERE / "records"}
OFFICIAL_FOLDERS = {"bf16": HERE.parent / "baseline100" / "records", "fp32": HERE.parent / "official" / "records"}
CHECKPOINTS = (10, 20, 30, 40)
OFFICIAL_CHECKPOINTS = (40, 90, 100)  # 90: the checkpoint the authors' test script evaluates
COLOR_VAR = 0.02


def runs(folder: Path, lnl_epochs: int = 40, color_var: float = COLOR_VAR) -> dict:
    """(method, seed) -> record at ``color_var``, recipe official, ``lnl_epochs``-epoch LNL (its step at 30 for
    40 epochs, the recipe's 40 for 100) or 100-epoch Baseline."""
    out = {}
    for r in from_folders([str(folder)]):
        c = r["config"]
        if round(c["color_var"], 3) != round(color_var, 3) or c.get("recipe") != "official" or not r.get("epochs"):
            continue
        if (c["method"], c["epochs"]) in (("lnl", lnl_epochs), ("baseline", 100)):
            out[(c["method"], c["seed"])] = r
    return out


def at(record: dict, epoch: int) -> float | None:
    return next((e["test/acc"] for e in record["epochs"] if e["epoch"] == epoch), None)


def table(folders: dict[str, Path], lnl_epochs: int, checkpoints: tuple[int, ...],
          color_var: float = COLOR_VAR) -> str:
    """Per seed and folder label: the Baseline's final test accuracy, LNL's at ``checkpoints`` and at its pick."""
    found = {precision: runs(folder, lnl_epochs, color_var) for precision, folder in folders.items()}
    head = ["seed", "precision", "Baseline"] + [f"LNL ep. {e}" for e in checkpoints] + ["`val_unbiased` pick"]
    lines = ["| " + " | ".join(head) + " |", "|---:|---|" + "---:|" * (len(head) - 2)]
    finished: dict[str, list[float]] = {p: [] for p in folders}
    for seed in sorted({s for f in found.values() for (_, s) in f}):
        for precision, rs in found.items():
            base, lnl = rs.get(("baseline", seed)), rs.get(("lnl", seed))
            cells = [f"{base['final']['test/acc']:.4f}" if base and base.get("final") else "—"]
            for e in checkpoints:
                v = at(lnl, e) if lnl else None
                cells.append(f"{v:.4f}" if v is not None else "—")
            if lnl and lnl["status"] == "finished":
                pick = select_epoch(lnl["epochs"], "val_unbiased")
                cells.append(f"{pick['test/acc']:.4f} (ep. {pick['epoch']})")
                finished[precision].append(lnl["epochs"][-1]["test/acc"])
            else:
                cells.append("—")
            lines.append(f"| {seed} | {precision} | " + " | ".join(cells) + " |")
    for precision, values in finished.items():
        if values:
            spread = f" ± {st.stdev(values):.3f}" if len(values) > 1 else ""
            lines.append(f"\n{precision}: LNL `last` {st.mean(values):.3f}{spread} over {len(values)} finished seed(s)")
    return "\n".join(lines) + "\n"


def other_levels() -> list[float]:
    """The σ² other than 0.020 at which ``baseline100/`` holds an LNL run of the recipe ``official``."""
    levels = {round(r["config"]["color_var"], 3) for r in from_folders([str(OFFICIAL_FOLDERS["bf16"])])
              if r["config"]["method"] == "lnl" and r["config"]["epochs"] == 100
              and r["config"].get("recipe") == "official"}
    return sorted(levels - {COLOR_VAR})


def main() -> str:
    text = (table(FOLDERS, 40, CHECKPOINTS)
            + "\nThe recipe `official` itself (100 LNL epochs, ×0.1 at 40 and 80; the authors evaluate epoch 90):\n\n"
            + table(OFFICIAL_FOLDERS, 100, OFFICIAL_CHECKPOINTS))
    for cv in other_levels():
        text += (f"\nσ² = {cv:.3f}, the recipe `official` (bf16):\n\n"
                 + table({"bf16": OFFICIAL_FOLDERS["bf16"]}, 100, OFFICIAL_CHECKPOINTS, cv)
                 + "\nand the headline's LNL (lnl40: 40 epochs, step at 30) from the same baselines:\n\n"
                 + table({"bf16": FOLDERS["bf16"]}, 40, CHECKPOINTS, cv))
    return text


if __name__ == "__main__":
    print(main(), end="")
