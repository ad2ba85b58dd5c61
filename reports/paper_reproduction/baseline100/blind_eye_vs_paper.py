"""BlindEye (20 epochs, alpha 0.1, from the 100-epoch baselines) against the paper per sigma^2: per seed, mean,
the val_unbiased pick, and its gain over its own starting baseline next to the paper's BlindEye - Baseline.
Read-only; prints a Markdown table. Run from the repository root:
.venv/bin/python reports/paper_reproduction/baseline100/blind_eye_vs_paper.py > reports/paper_reproduction/baseline100/blind_eye_vs_paper.md
"""
import csv, glob, json, statistics as st
from collections import defaultdict
paper={(r['method'],float(r['color_var'])):float(r['test_acc']) for r in csv.DictReader(open('lnl/resources/paper_colored_mnist.csv'))}
acc=defaultdict(dict); pick=defaultdict(dict)
for f in glob.glob('reports/paper_reproduction/baseline100/records/*/record.json'):
    r=json.load(open(f))
    if r['status']!='finished': continue
    c=r['config']
    if c['method'] not in ('baseline','blind_eye'): continue
    if c['method']=='baseline' and c['epochs']!=100: continue
    acc[(c['method'],c['color_var'])][c['seed']]=r['final']['test/acc']
    ep=r['final']['best/val_unbiased/epoch']; pick[(c['method'],c['color_var'])][c['seed']]=r['epochs'][ep-1]['test/acc']
print("| σ² | BlindEye seeds 0 / 1 / 2 (`last`) | mean ± std | paper | Δ | `val_unbiased` pick | baseline (ours − paper) | BlindEye − baseline: ours / paper |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for cv in sorted({k[1] for k in acc}):
    b=acc[('blind_eye',cv)]; base=acc[('baseline',cv)]
    if not b: continue
    v=[b[s] for s in sorted(b)]; m=st.mean(v); sd=f'{st.stdev(v):.3f}' if len(v)>1 else f'n/a (n={len(v)})'
    pv=[pick[('blind_eye',cv)][s] for s in sorted(b)]
    bm=st.mean(base[s] for s in sorted(b))
    pb=paper[('blind_eye',cv)]; pbase=paper[('baseline',cv)]
    print(f"| {cv:.3f} | {' / '.join(f'{x:.4f}' for x in v)} | {m:.3f} ± {sd} | {pb:.4f} | {m-pb:+.3f} | {st.mean(pv):.3f} | {bm:.3f} ({bm-pbase:+.3f}) | {m-bm:+.3f} / {pb-pbase:+.3f} |")
