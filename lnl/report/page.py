"""The reproduction's front page, rebuilt from sweep files and the results store (``lnl-report --headline``).

``build_headline_page`` writes into ``out`` (``reports/paper_reproduction``):

* ``README.md``: the verdict, the headline table (the sweep's systems x seven σ², ours as mean ± std (n) beside the
  paper and the difference, selection rule named), the accuracy-vs-σ² figure and the equal-Baseline figure,
  then the findings (``findings.yaml``: at most ten, each linking to its detail page), then the command
  that reproduces the table and what it costs;
* ``headline.csv`` (system, rule, color_var, mean, std, n, paper, diff);
* ``figures/``: the two figures;
* ``studies/<name>/``: one detail page per study sweep file (``sweeps/studies/*.yaml``), built by
  :func:`lnl.report.build.build_report` over the runs the sweep selects, its question on top;
* ``<stem>.md`` per ``--compare`` sweep file: another recipe beside the headline, per level and seed, held to
  issue 38's criterion, with what each recipe's cells cost;
* ``cost.md``: minutes per (σ², seed) of each system, phases apart, on the machine that ran it;
* ``equal_baseline.md``, ``test_draw/reweight.md`` and ``palette_fig9/test_colors.md``: the analyses.

README.md and headline.csv depend only on the sweep files, the store and ``findings.yaml`` (no dates, no
paths of this machine), so a rebuild from the same inputs is byte-identical (a test holds it to that).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from lnl.analysis import equal_baseline, figures, headline, protocol, recipe_compare, study, test_colors, test_draw
from lnl.errors import UserError
from lnl.report import recipe_cost
from lnl.report.select import pairs, select, sweep_configs
from lnl.runner import epoch_seconds
from lnl.sweep_config import load_sweep

MAX_FINDINGS = 10
MAX_LINES = 250


class PageError(UserError):
    """The page's inputs are inconsistent (too many findings, a link to nothing, a page too long)."""


def question(sweep_path: str | Path) -> str:
    """A sweep file's opening comment (its question), without the ``#`` marks, a leading "Question:" (the page
    says it) or the indented command lines that may follow it."""
    lines = []
    for line in Path(sweep_path).read_text(encoding="utf-8").splitlines():
        if not line.startswith("#") or line.startswith("#  "):
            break
        lines.append(line.lstrip("#").strip())
    text = re.sub(r"^Question( \([^)]*\))?:\s*", "", " ".join(lines))
    return text[:1].upper() + text[1:]


def _cost(records: list[dict[str, Any]], configs: list[Any]) -> str:
    """Hours the sweep's runs cost, per device kind, priced at the store's median epoch times."""
    per_epoch = epoch_seconds(records)
    parts = []
    for kind, label in (("cpu", "a 2-core CPU (bf16)"), ("cuda", "an H200 (summed per run; 13–16 runs trained there side by side under CUDA MPS)")):
        timed = [(per_epoch[(c.method, kind)], c) for c in configs if (c.method, kind) in per_epoch]
        untimed = sorted({c.method for c in configs if (c.method, kind) not in per_epoch})
        if timed:
            hours = sum(s * c.epochs for s, c in timed) / 3600
            parts.append(f"≈ {hours:.1f} h on {label}" + (f" without {', '.join(untimed)} (never timed there)"
                                                          if untimed else ""))
    return "; ".join(parts) if parts else "not timed yet"


def _verdict(table: list[dict[str, Any]], iso: list[dict[str, Any]]) -> str:
    """One sentence from the numbers: each system against the paper's curve at equal Baseline accuracy, and
    LNL against the paper at equal σ²."""
    def gaps(method: str) -> list[float]:
        return [r["ours"] - r["paper_at_baseline"] for r in iso if r["method"] == method]

    parts = []
    if gaps("gray"):
        parts.append(f"Gray lands within {max(map(abs, gaps('gray'))):.3f} of the paper's curve")
    if gaps("blind_eye"):
        parts.append(f"BlindEye {min(gaps('blind_eye')):+.3f} to {max(gaps('blind_eye')):+.3f} from it")
    if gaps("lnl"):
        parts.append(f"LNL {-max(gaps('lnl')):.3f}–{-min(gaps('lnl')):.3f} below it")
    text = "On the authors' data and protocol, compared at equal Baseline accuracy, " + ", ".join(parts)
    lnl = [r for r in table if r["system"] == "LNL" and r["rule"] == "last" and r["diff"] is not None]
    below = [r["diff"] for r in lnl if r["diff"] < 0]
    if below:
        text += (f"; at equal σ², LNL is {-max(below):.3f}–{-min(below):.3f} below the paper at {len(below)} of "
                 f"{len(lnl)} levels")
    above = [r for r in lnl if r["diff"] >= 0]
    if above:
        text += " and above it at σ² " + ", ".join(f"{r['color_var']:.3f} ({r['diff']:+.3f})" for r in above)
    return text + ": what is left is specific to LNL." if gaps("lnl") and max(gaps("lnl")) < 0 else text + "."


def _findings(path: Path, out: Path) -> list[str]:
    items = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    if len(items) > MAX_FINDINGS:
        raise PageError(f"{path}: {len(items)} findings; the page holds at most {MAX_FINDINGS}")
    lines = []
    for k, item in enumerate(items, 1):
        for link in re.findall(r"\]\(([^)#]+)", item["text"]):
            if not link.startswith("http") and not (out / link).exists():
                raise PageError(f"{path}: finding {k} links to {link}, which {out} does not have")
        lines.append(f"{k}. **{item['title']}** {item['text'].strip()}")
    return lines


def build_study_pages(studies: Path, records: list[dict[str, Any]], runs_dir: str, out: Path) -> list[str]:
    """One detail page per study sweep file; returns their names."""
    from lnl.report.build import build_report

    names = []
    for sweep in sorted(studies.glob("*.yaml")):
        found = pairs(records, sweep_configs(sweep, runs_dir))
        chosen = select(records, [cfg for cfg, _ in found])
        if not chosen:
            continue
        notes = (f"**Question.** {question(sweep)}\n\n## The study's comparison\n\n"
                 f"{study.markdown(load_sweep(sweep), found)}\nRuns: the grid of `{sweep.as_posix()}`, found in the "
                 f"store by configuration (`lnl-run-sweep {sweep.as_posix()} --runs-dir {runs_dir}` trains any that "
                 "are missing). The tables below are the generic report over the same runs.")
        if sweep.stem == "palette_fig9":
            notes += "\n\n### The decoded test colours against each palette\n\n" + test_colors.markdown()
        build_report(chosen, out / "studies" / sweep.stem, title=load_sweep(sweep).get("description", sweep.stem),
                     command=f"lnl-report --headline ... (study {sweep.stem})", samples=False, notes=notes,
                     log=lambda _: None, pdf=False)  # PNG only: pages for readers, in the tracked tree
        names.append(sweep.stem)
    return names


def build_headline_page(sweep_path: str | Path, records: list[dict[str, Any]], runs_dir: str, out: str | Path,
                        studies: str | Path | None = None, findings: str | Path | None = None,
                        compare: list[str | Path] = ()) -> list[Path]:
    """Write the front page and everything it links to into ``out``; returns the front page's files.
    ``compare``: sweep files of other recipes, each set beside the headline on ``<stem>.md``."""
    out, h = Path(out), headline_of(sweep_path, records, runs_dir)
    for other in compare:
        (out / f"{Path(other).stem}.md").write_text(compare_page(other, h.chosen, records, runs_dir),
                                                    encoding="utf-8")
    figures.accuracy_figure(h.table, out / "figures" / "accuracy_vs_color_var.png")
    figures.equal_baseline(h.iso, out / "figures" / "equal_baseline.png")
    (out / "equal_baseline.md").write_text("# At equal Baseline accuracy\n\n" + equal_baseline.__doc__.split("\n\n", 1)[1]
                                           + "\n" + equal_baseline.markdown(h.iso), encoding="utf-8")
    if test_draw.BY_COLOR.is_file():
        (out / "test_draw").mkdir(parents=True, exist_ok=True)
        (out / "test_draw" / "reweight.md").write_text(test_draw.report(test_draw.load(test_draw.BY_COLOR)),
                                                       encoding="utf-8")
    (out / "cost.md").write_text(cost_page({Path(sweep_path).stem: h.chosen}, records), encoding="utf-8")
    if studies:
        build_study_pages(Path(studies), records, runs_dir, out)
    readme, csv_text = front_page(h, records, runs_dir, out, studies, findings, compare)
    (out / "headline.csv").write_text(csv_text, encoding="utf-8")
    (out / "README.md").write_text(readme, encoding="utf-8")
    return [out / "README.md", out / "headline.csv"]


class Headline(NamedTuple):
    """What the headline sweep file selects from the store, computed once for all the pages that show it."""
    sweep: Path
    configs: list[Any]  # the sweep's run configs
    chosen: list[dict[str, Any]]  # their records (finished or not)
    systems: tuple[tuple[str, str], ...]  # (display name, method) per system, in the sweep file's order
    table: list[dict[str, Any]]  # headline.rows: one row per system x sigma^2 x rule
    iso: list[dict[str, Any]]  # equal_baseline.table


def headline_of(sweep_path: str | Path, records: list[dict[str, Any]], runs_dir: str) -> Headline:
    configs = sweep_configs(sweep_path, runs_dir)
    chosen, systems = select(records, configs), headline.systems_of(c.method for c in configs)
    return Headline(Path(sweep_path), configs, chosen, systems, headline.rows(chosen, systems),
                    equal_baseline.table(chosen, systems=systems))


def front_page(h: Headline, records: list[dict[str, Any]], runs_dir: str, out: str | Path,
               studies: str | Path | None = None, findings: str | Path | None = None,
               compare: list[str | Path] = ()) -> tuple[str, str]:
    """The text of README.md and of headline.csv (nothing written; ``out`` is where the pages the findings
    link to must already be, and the folder the page names in its command)."""
    out = Path(out)
    configs, chosen, systems, table, iso = h.configs, h.chosen, h.systems, h.table, h.iso
    finished = sum(r.get("status") == "finished" for r in chosen)
    sweep = h.sweep.as_posix()
    label_free = protocol.note(systems)  # what the protocol leaves LfF / ReBias, when the sweep runs them
    lines = ["# Learning Not to Learn on Colored MNIST: the paper's table, reproduced", "",
             f"**Verdict.** {_verdict(table, iso)}", "",
             "Unbiased test accuracy (test digits in random palette colours), ours as mean ± std over seeds (n) "
             "beside the paper (Kim et al., CVPR 2019, Fig. 4). Selection rule: `last`, the final epoch of each run "
             "(no unbiased data chose anything); the `val_unbiased` pick is in [headline.csv](headline.csv).", "",
             headline.markdown(table), headline.bias_knowledge(systems), "",
             *([label_free, ""] if label_free else []),
             f"{finished} of {len(configs)} runs of [`{sweep}`](../../{sweep}) are finished; a missing cell "
             "or n < 3 is a run still to train.", "",
             "![accuracy against σ², ours solid, the paper dashed](figures/accuracy_vs_color_var.png)", "",
             "![each system against the paper at equal Baseline accuracy](figures/equal_baseline.png)", "",
             "Right: each system against its Baseline's accuracy, the measure of how biased the data are "
             "([table](equal_baseline.md)). Our Baselines lie above the paper's at every σ², so our data are less "
             "biased at equal σ²; compared where the Baselines are equally fooled, the systems can be read "
             "against the paper without knowing how the authors mapped σ² onto colour.", ""]
    if findings:
        lines += ["## Findings", ""] + _findings(Path(findings), out) + [""]
    lines += ["## Reproduce", "",
              "```bash",
              f"lnl-run-sweep {sweep} --runs-dir {runs_dir} --dry-run   # what is missing, and its cost",
              f"lnl-run-sweep {sweep} --runs-dir {runs_dir}             # train it (resumable; --jobs, --device cuda)",
              f"lnl-report --headline {sweep} --studies {Path(studies).as_posix() if studies else 'sweeps/studies'} "
              f"--runs {runs_dir}" + (f" --findings {Path(findings).as_posix()}" if findings else "")
              + "".join(f" --compare {Path(c).as_posix()}" for c in compare) + f" --out {out.as_posix()}",
              "```", "",
              f"Cost of the whole table from nothing: {_cost(records, _with_dependencies(configs))}, at the median "
              "epoch times of the store's records. Runs that start from a Baseline (LNL, BlindEye) reuse it; what "
              "each cell cost, per phase and machine: [cost.md](cost.md).", "",
              "Every run is one record in [`results/`](../../results) (its id is a hash of its configuration); the "
              "21 Baseline checkpoints the other runs start from are kept in `results/_checkpoints/` by SHA-256. "
              "The [lab log](NOTES.md) has every experiment in the order it was run.", ""]
    lines += [_faster(other, records, chosen, runs_dir) for other in compare]
    text = "\n".join(lines)
    if text.count("\n") + 1 > MAX_LINES:
        raise PageError(f"the page has {text.count(chr(10)) + 1} lines; at most {MAX_LINES}")
    return text, headline.to_csv(table)




def _faster(other: str | Path, records: list[dict[str, Any]], chosen: list[dict[str, Any]], runs_dir: str) -> str:
    """The front page's line for another recipe's sweep file: its page and its verdict."""
    name, path = Path(other).stem, Path(other).as_posix()
    configs = sweep_configs(other, runs_dir)
    against = recipe_compare.rows(select(records, configs), chosen)
    said = recipe_compare.verdict(against, name, {c.color_var for c in configs})
    return f"A faster recipe, [`{name}`]({name}.md) ([`{path}`](../../{path})): {said}\n"


def compare_page(sweep_path: str | Path, reference: list[dict[str, Any]], records: list[dict[str, Any]],
                 runs_dir: str) -> str:
    """``<stem>.md``: the recipe of ``sweep_path`` beside the headline (``reference``), per level and seed, held
    to the criterion (:mod:`lnl.analysis.recipe_compare`), then what each recipe's cells cost."""
    name = Path(sweep_path).stem
    found = pairs(records, sweep_configs(sweep_path, runs_dir))
    chosen = select(records, [cfg for cfg, _ in found])
    table = recipe_compare.rows(chosen, reference)
    said = recipe_compare.verdict(table, name, {cfg.color_var for cfg, _ in found})

    def cell(r: dict[str, Any]) -> tuple[str, float]:
        return r["config"]["method"], round(float(r["config"]["color_var"]), 3)

    cells = {cell(r) for r in chosen}
    beside = [r for r in reference if cell(r) in cells]  # the headline's runs of the cells this recipe covers
    done = sum(r.get("status") == "finished" for r in chosen)
    return "\n".join([
        f"# Recipe `{name}` beside the headline", "", f"**Question.** {question(sweep_path)}", "",
        f"**Verdict.** {said}", "", recipe_compare.markdown(table, name),
        f"{done} of {len(found)} runs of [`{Path(sweep_path).as_posix()}`](../../{Path(sweep_path).as_posix()}) are "
        f"finished (`lnl-run-sweep {Path(sweep_path).as_posix()} --runs-dir {runs_dir}` trains the rest).", "",
        "## What each cell cost", "",
        recipe_cost.markdown(recipe_cost.recipe_cost({name: chosen, "headline": beside}, records))])


def cost_page(recipes: dict[str, list[dict[str, Any]]], store: list[dict[str, Any]]) -> str:
    """``cost.md``: what each recipe's cells cost per (σ², seed), phases apart (:mod:`lnl.report.recipe_cost`)."""
    return ("# What each cell cost\n\n" + recipe_cost.markdown(recipe_cost.recipe_cost(recipes, store))
            + "\nCPU records written before the CPU model was recorded say \"model not recorded\"; the headline's "
              "CPU runs ran on 2-core cloud machines of three kinds (Sapphire Rapids with AMX, Zen 4 with AVX-512 "
              "BF16, Zen 3), so their minutes vary with the machine as much as with the recipe.\n")


def _with_dependencies(configs: list[Any]) -> list[Any]:
    """The configs and the pretrained runs they start from, each once."""
    seen, out = set(), []
    for cfg in configs + [c.init_config() for c in configs if c.init_from]:
        if cfg.default_run_id() not in seen:
            seen.add(cfg.default_run_id())
            out.append(cfg)
    return out


def page_from_args(args: Any, records: list[dict[str, Any]]) -> int:
    """``--headline``: the front page from the headline sweep file and the store."""
    import sys

    from lnl.config import ConfigError
    from lnl.search import SearchSpaceError
    from lnl.sweep_config import SweepError

    try:
        written = build_headline_page(args.headline, records, args.runs[0], args.out, studies=args.studies,
                                      findings=args.findings, compare=args.compare or [])
    except (SweepError, SearchSpaceError, ConfigError, PageError, OSError) as err:
        print(f"error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2
    print(f"report: {', '.join(p.as_posix() for p in written)}")
    return 0
