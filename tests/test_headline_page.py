"""The front page of reports/paper_reproduction/ is the output of `lnl-report --headline` over the committed
sweep files and store: rebuilt here, README.md and headline.csv equal the committed files byte for byte."""
from __future__ import annotations

import pytest

from conftest import REPO
from lnl.report.load import from_folders
from lnl.report.page import MAX_FINDINGS, PageError, _findings, front_page, headline_of

PAGE = REPO / "reports" / "paper_reproduction"


def test_the_committed_page_and_csv_rebuild_identically(monkeypatch):
    monkeypatch.chdir(REPO)  # the page names paths relative to the repository root
    records = from_folders(["results"], warn=lambda _: None)
    readme, csv_text = front_page(headline_of("sweeps/headline.yaml", records, "results"), records, "results",
                                  "reports/paper_reproduction",
                                  "sweeps/studies", "reports/paper_reproduction/findings.yaml", ["sweeps/fast.yaml"])
    assert readme == (PAGE / "README.md").read_text(encoding="utf-8"), \
        "README.md is stale: lnl-report --headline rebuilds it (see its Reproduce section)"
    assert csv_text == (PAGE / "headline.csv").read_text(encoding="utf-8")
    assert readme.count("\n") + 1 <= 250


def test_findings_are_capped_and_must_link_to_a_page(tmp_path):
    (tmp_path / "page.md").write_text("x")
    ok = tmp_path / "ok.yaml"
    ok.write_text("- title: A.\n  text: See [it](page.md).\n")
    assert _findings(ok, tmp_path) == ["1. **A.** See [it](page.md)."]
    broken = tmp_path / "broken.yaml"
    broken.write_text("- title: A.\n  text: See [it](missing.md).\n")
    with pytest.raises(PageError, match="missing.md"):
        _findings(broken, tmp_path)
    many = tmp_path / "many.yaml"
    many.write_text("".join(f"- title: F{k}.\n  text: x\n" for k in range(MAX_FINDINGS + 1)))
    with pytest.raises(PageError, match="at most"):
        _findings(many, tmp_path)


def test_the_readme_shows_the_pages_table():
    page = (PAGE / "README.md").read_text(encoding="utf-8")
    table = page[page.index("| system |"):page.index("\n\n", page.index("| system |"))]
    assert table in (REPO / "README.md").read_text(encoding="utf-8"), "README's headline table is stale"
