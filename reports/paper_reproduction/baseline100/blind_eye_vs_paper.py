"""BlindEye (20 epochs from the 100-epoch baselines) against the paper, per sigma^2 and alpha: per seed, the
mean, the final-epoch val_unbiased (what alpha is chosen on), the val_unbiased pick, and the gain over its
own starting baselines next to the paper's BlindEye - Baseline. Read-only; prints a Markdown table.
BlindEye runs come from baseline100/records (alpha 0.1) and blind_eye_alpha100/records (alpha 0.01 / 0.3),
the baselines from baseline100/records; a run in both folders counts once. Run from the repository root:
.venv/bin/python reports/paper_reproduction/baseline100/blind_eye_vs_paper.py > reports/paper_reproduction/baseline100/blind_eye_vs_paper.md
"""
import csv
import statistics as st
from collections import defaultdict

from lnl.report.load import from_folders
from lnl.report.tables import select_epoch

PAPER = {(r["method"], float(r["color_var"])): float(r["test_acc"])
         for r in csv.DictReader(open("lnl/resources/paper_colored_mnist.csv"))}

runs = defaultdict(dict)  # (method, sigma^2, alpha or None) -> seed -> (last test, final val_unbiased, picked test)
for r in from_folders(["reports/paper_reproduction/baseline100/records",
                       "reports/paper_reproduction/blind_eye_alpha100/records"]):
    c = r["config"]
    if r["status"] != "finished" or (c["method"], c["epochs"]) not in (("baseline", 100), ("blind_eye", 20)):
        continue
    last, picked = (select_epoch(r["epochs"], rule) for rule in ("last", "val_unbiased"))
    alpha = c["alpha"] if c["method"] == "blind_eye" else None
    runs[(c["method"], c["color_var"], alpha)][c["seed"]] = (last["test/acc"], last["val_unbiased/acc"],
                                                             picked["test/acc"])

print("| σ² | α | BlindEye seeds 0 / 1 / 2 (`last`) | mean ± std | final `val_unbiased` | paper | Δ "
      "| `val_unbiased` pick | baseline (ours − paper) | BlindEye − baseline: ours / paper |")
print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
for method, cv, alpha in sorted(k for k in runs if k[0] == "blind_eye"):
    seeds = runs[(method, cv, alpha)]
    last = [seeds[s][0] for s in sorted(seeds)]
    mean = st.mean(last)
    spread = f"{st.stdev(last):.3f}" if len(last) > 1 else f"n/a (n={len(last)})"
    base = st.mean(runs[("baseline", cv, None)][s][0] for s in seeds)
    paper, paper_base = PAPER[("blind_eye", cv)], PAPER[("baseline", cv)]
    print(f"| {cv:.3f} | {alpha:g} | {' / '.join(f'{x:.4f}' for x in last)} | {mean:.3f} ± {spread} "
          f"| {st.mean(seeds[s][1] for s in seeds):.4f} | {paper:.4f} | {mean - paper:+.3f} "
          f"| {st.mean(seeds[s][2] for s in seeds):.3f} | {base:.3f} ({base - paper_base:+.3f}) "
          f"| {mean - base:+.3f} / {paper - paper_base:+.3f} |")
