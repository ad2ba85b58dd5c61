#!/usr/bin/env bash
# Rebuild reports/paper_reproduction/appendix_graded_6epoch/ (see its README.md for the recipe, the budget and the cost).
#
#   bash reports/paper_reproduction/appendix_graded_6epoch/reproduce.sh            # train the 63-run grid, then build the report
#   bash reports/paper_reproduction/appendix_graded_6epoch/reproduce.sh --report   # only rebuild the report from the committed records
#   bash reports/paper_reproduction/appendix_graded_6epoch/reproduce.sh --search   # redo the LNL recipe search first, then as above
#
# The grid is resumable: finished runs are skipped and killed runs continue from their checkpoint, so it
# can be run in parts (Ctrl-C and rerun, or split it with: scripts/run_sweep.py ... --shard 1/3).
set -euo pipefail
cd "$(dirname "$0")/../../.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python
OUT=reports/paper_reproduction/appendix_graded_6epoch
MODE=${1:-}

if [ "$MODE" = "--search" ]; then
  # The LNL recipe: a short Optuna search on the unbiased validation split at sigma^2 = 0.020 only.
  "$PY" scripts/optuna_search.py --space sweeps/lnl_tune.yaml --color-var 0.02 --n-trials 20 --seed 0 \
      --storage "sqlite:///$OUT/search/optuna.db" --runs-dir "$OUT/search/records" --out "$OUT/search/best" \
      --set epochs=4 strokes=graded palette=v1 --wandb-mode disabled
fi
if [ "$MODE" != "--report" ]; then
  # baseline / lnl / gray x 7 levels x 3 seeds with lnl/resources/recipes/reproduction.yaml, on the data of the
  # time: graded strokes and the first palette. (Run ids now also hash the data version, so a retrain writes
  # new records beside the committed ones instead of skipping them.)
  "$PY" scripts/run_sweep.py sweeps/paper_table.yaml --runs-dir "$OUT/records" --set recipe=reproduction strokes=graded palette=v1
fi
"$PY" scripts/report.py --runs "$OUT/records" --out "$OUT" --notes "$OUT/NOTES.md" \
    --title "Reproduction of the paper's Colored MNIST comparison (Kim et al., CVPR 2019, Fig. 4)"
"$PY" scripts/report.py --runs "$OUT/search/records" --optuna-storage "sqlite:///$OUT/search/optuna.db" \
    --out "$OUT/search" --no-samples --primary val_unbiased \
    --title "LNL recipe search at sigma^2 = 0.020 (validation data only)"
