"""The documentation site: generated from the registry, every formula rendered, offline.

The generator (`docs/build.py`) must write a page for every chapter with an equation, holding
each equation's name and LaTeX; the docstrings' `>>>` examples must pass as doctests; and in a
headless Chromium that can resolve no host but 127.0.0.1, every generated equation page of the
built site (mkdocs --strict) must render every formula with the KaTeX served from the site
itself. The browser test installs nothing: it skips, naming what is missing, only where Chromium
(Debian's `chromium`), npm (for KaTeX, when it is not already installed under docs/_build) or
MkDocs is absent.
"""

from __future__ import annotations

import doctest
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path

import pytest

import spec
from spec import _chapters

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _load_build():
    module_spec = importlib.util.spec_from_file_location("docs_build", DOCS / "build.py")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_spec.name] = module
    module_spec.loader.exec_module(module)
    return module


build = _load_build()


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    return build.generate_pages()


# ----------------------------------------------------------------------------- the generator
def test_a_page_for_every_chapter_with_every_equation_and_its_latex(pages):
    catalogue = spec.catalogue()
    assert catalogue, "the registry is empty"
    for chapter in spec.CHAPTERS:
        records = [r for r in catalogue.values() if r.chapter == chapter]
        page = pages.get(f"equations/{chapter}.md")
        if not records:
            assert page is None, f"chapter {chapter} has no equation but a page"
            continue
        assert page is not None, f"no page for chapter {chapter}"
        assert spec.CHAPTERS[chapter] in page
        for rec in records:
            assert f"## `{rec.name}`" in page, f"{rec.name} has no section in {chapter}.md"
            assert rec.latex.strip() in page, f"{rec.name}'s LaTeX is not on {chapter}.md"
            assert rec.signature in page
            for ident in rec.identities:
                assert f"`{ident.key}`" in page


def test_sources_are_cited_by_number_and_title_never_by_file(pages):
    """A reader of the site or of a clone has none of the article files: the five articles are
    cited by number, listed by title on the sources page, and nothing points outside the
    repository for them."""
    assert set(spec.SEEDS) == {"000", "001", "002", "003", "004"}
    sources = pages["sources.md"]
    for number, title in spec.SEEDS.items():
        assert f"## {number} — {build.md_text(title)}" in sources
    tracked = subprocess.run(["git", "ls-files", "*.py", "*.md", "*.toml", "*.yml"], cwd=ROOT,
                             capture_output=True, text=True).stdout.split()
    texts = dict(pages)
    texts.update({f: (ROOT / f).read_text(encoding="utf-8") for f in tracked
                  if (ROOT / f).is_file() and f != "tests/test_docs.py"})
    pattern = re.compile(r"shared/seeds|\b00[0-4]_[0-9a-f]{16}\.txt")
    offenders = sorted(name for name, text in texts.items() if pattern.search(text))
    assert not offenders, f"these point to the article files: {offenders}"


def test_the_catalogue_and_navigation_follow_the_chapter_order(pages):
    pytest.importorskip("yaml", reason="the navigation is read from mkdocs.yml with PyYAML")
    catalogue = pages["equations/index.md"]
    titles = list(spec.CHAPTERS.values())
    positions = [catalogue.index(t) for t in titles]
    assert positions == sorted(positions)
    nav = build.nav(pages, build.results_files())
    equations = next(item["Equations"] for item in nav if "Equations" in item)
    chapters = [next(iter(e.values())) for e in equations[1:]]
    populated = [c for c in spec.CHAPTERS if any(r.chapter == c
                                                  for r in spec.catalogue().values())]
    assert chapters == [f"equations/{c}.md" for c in populated]


def test_status_comes_from_the_reports_and_new_equations_are_not_yet_run():
    rec = spec.catalogue()["softmax"]
    row = {t: {"status": "passed", "passed": 3, "failed": 0, "skipped": 0, "reasons": []}
           for t in rec.tiers}
    row["R"] = {"status": "skipped", "passed": 0, "failed": 0, "skipped": 1,
                "reasons": ["needs a GPU"]}
    reports = {"numpy": {"info": {"id": "numpy", "device": "cpu", "versions": {},
                                  "float_dtypes": ["float64"]},
                         "matrix": {"softmax": row}, "failures": [],
                         "run": {"created": "2026-01-01T00:00:00+00:00", "profile": "ci",
                                 "python": "3.11", "platform": "", "file": "numpy.json",
                                 "wall_time_s": 1.0}}}
    site = build.Site(reports)
    section = build.equation_section(site, rec, site.links_from("equations"))
    assert "| `numpy` | ✅ 3 | ✅ 3 | ✅ 3 | ⏭ [1] | ✅ 3 | ✅ 3 |" in section
    assert "1. needs a GPU" in section


def test_each_identity_shows_its_status_per_tier_and_its_tests():
    rec = spec.catalogue()["softmax"]
    ident = rec.identities[0]
    grid = {"softmax": {ident.key: {t: {"status": "passed", "passed": 2, "failed": 0,
                                        "skipped": 0, "tests": [f"conformance/test_{t}.py::t"]}
                                    for t in ident.tiers}}}
    first = ident.tiers[0]
    grid["softmax"][ident.key][first] = {"status": "failed", "tests": ["conformance/a.py::bad"]}
    run = {"created": "2026-01-01T00:00:00+00:00", "commit": "0123456789ab", "profile": "ci",
           "python": "3.11", "platform": "", "file": "numpy.json", "wall_time_s": 1.0}
    reports = {"numpy": {"info": {"id": "numpy"}, "matrix": {}, "failures": [],
                         "identities": grid, "run": run}}
    site = build.Site(reports)
    section = build.equation_section(site, rec, site.links_from("equations"))
    line = next(s for s in section.splitlines() if s.startswith(f"| `{ident.key}` |"))
    assert f"[{first}](../tiers.md#tier-{first.lower()}) ❌" in line
    assert "`conformance/a.py::bad`" in line
    for tier in ident.tiers[1:]:
        assert f"[{tier}](../tiers.md#tier-{tier.lower()}) ✅" in line
    assert "at commit `0123456789ab`" in section  # the statuses say where they come from
    # an identity the committed runs do not record is not yet run, never shown as proven
    other = next(i for i in rec.identities if i.key != ident.key)
    line = next(s for s in section.splitlines() if s.startswith(f"| `{other.key}` |"))
    assert build.NOT_RUN in line and "✅" not in line
    other = next(r for r in spec.catalogue().values() if r.name != "softmax")
    section = build.equation_section(site, other, site.links_from("equations"))
    assert build.NOT_RUN in section
    assert build.equation_status(other, reports, "numpy") == build.NOT_RUN


def test_committed_reports_are_read_per_backend():
    reports = build.load_reports()
    committed = sorted((DOCS / "results" / "conformance").glob("*.json"))
    if not committed:
        pytest.skip("no conformance report is committed")
    assert reports, "committed reports were found but none was read"
    for backend_id, entry in reports.items():
        assert entry["info"]["id"] == backend_id
        assert isinstance(entry["matrix"], dict)


#: the backends CI runs the suite on (.ci/run): the committed reports must cover each of them
CI_BACKENDS = ("numpy", "array_api_strict", "torch", "dask", "jax")


def test_committed_reports_give_every_equation_and_identity_a_status():
    """No page may say "not yet run" for an equation or an identity that CI runs: the
    committed reports (regenerated by the command in docs/src/guide/reading-the-report.md) hold a
    status for every registered equation on every CI backend, and for every identity."""
    reports = build.load_reports()
    missing = [b for b in CI_BACKENDS if b not in reports]
    assert not missing, f"no committed conformance report for {missing}"
    site = build.Site(reports)
    not_run, unproven = [], []
    for rec in spec.catalogue().values():
        not_run += [f"{rec.name} on {b}" for b in CI_BACKENDS
                    if build.equation_status(rec, reports, b) == build.NOT_RUN]
        unproven += [f"{rec.name}: {ident.key}" for ident in rec.identities
                     if build.NOT_RUN in build.identity_status(site, rec.name, ident)[0]]
    assert not not_run, f"{len(not_run)} equations not yet run: {not_run[:10]}"
    assert not unproven, f"{len(unproven)} identities not yet run: {unproven[:10]}"


def test_docstring_markup_becomes_markdown():
    text = build.rst_to_markdown(
        "Intro with x_i and `softmax`.\n\n"
        ".. math:: a = \\frac{b}{c}\n"
        "          + d\n\n"
        "Shapes: x (n,). Source: 002 §2.\n\n"
        "Run it::\n\n"
        "    python -m conformance\n\n"
        ">>> 1 + 1\n"
        "2\n",
        names={"softmax": "probability.md#softmax"})
    assert "x\\_i" in text
    assert "[`softmax`](probability.md#softmax)" in text
    assert "$$\na = \\frac{b}{c}\n+ d\n$$" in text
    assert "**Shapes:** x (n,)." in text and "**Source:** 002 §2." in text
    assert "```bash\npython -m conformance\n```" in text
    assert "```pycon\n>>> 1 + 1\n2\n```" in text


def test_rst_tables_strong_text_and_cross_references_become_markdown():
    text = build.rst_to_markdown(
        "**Block parameters** of :func:`~spec.softmax` and :class:`Thing`:\n\n"
        "=========  ===========  =======\n"
        "key        shape        role\n"
        "=========  ===========  =======\n"
        "``w_q``    (h·d, d)     query\n"
        "``b_q``    (h·d,);      its\n"
        "           optional     bias\n"
        "``x|y``    (d,)\n"
        "=========  ===========  =======\n\n"
        "After the table.\n",
        names={"softmax": "probability.md#softmax"})
    assert text.startswith("**Block parameters** of [`softmax()`](probability.md#softmax) and "
                           "`Thing`:")
    assert ("| key | shape | role |\n|---|---|---|\n| `w_q` | (h·d, d) | query |\n"
            "| `b_q` | (h·d,); optional | its bias |\n| `x\\|y` | (d,) |  |") in text
    assert text.endswith("\n\nAfter the table.")


#: rST or escaped markup that means a docstring was not converted: a table rule, a directive,
#: a role, doubled backticks, asterisks escaped into literal text
LEFTOVER = re.compile(r"^=+( +=+)+\s*$|^\s*\.\. [\w-]+::|:(?:py:)?(?:func|class|meth|math|mod|"
                      r"attr|data|obj|ref):`|``|\\\*\\\*", re.M)


def test_no_page_shows_leftover_markup(pages):
    """Every generated page: rST the converter did not handle would reach the reader as is."""
    fences = re.compile(r"^\s*```.*?^\s*```", re.M | re.S)  # code blocks show what they hold
    found = {name: sorted({m.group(0).strip() for m in LEFTOVER.finditer(fences.sub("", text))})
             for name, text in pages.items()}
    assert not {k: v for k, v in found.items() if v}, found


# ----------------------------------------------------------------------------- doctests
def test_docstring_examples_pass_as_doctests():
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tried = {}
    for module in (spec, *_chapters.MODULES):
        for test in finder.find(module, module.__name__, globs={}):
            runner.run(test)
        tried[module.__name__] = sum(len(t.examples) for t in finder.find(module))
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} docstring examples failed (see above)"
    assert tried["spec"] >= 2, "the package docstring's example was not run"


# ----------------------------------------------------------------------------- the browser
class _Page(HTMLParser):
    """Counts formulas (arithmatex) or rendered KaTeX, and collects the visible text."""

    SKIP = frozenset({"script", "style", "annotation", "pre", "code", "noscript"})

    def __init__(self) -> None:
        super().__init__()
        self.formulas = self.katex = self.errors = 0
        self.external: list[str] = []
        self.text: list[str] = []
        self._skip = 0
        self._stack: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        self.formulas += "arithmatex" in classes
        self.katex += "katex" in classes
        self.errors += "katex-error" in classes
        url = attrs.get("src") if tag in ("script", "img", "iframe") else (
            attrs.get("href") if tag == "link" else None)
        if url and (url.split(":")[0] in ("http", "https") or url.startswith("//")):
            self.external.append(url)
        if tag in ("meta", "link", "img", "br", "hr", "input", "source", "wbr"):
            return
        self._stack.append(tag)
        self._skip += tag in self.SKIP

    def handle_endtag(self, tag):
        if tag in self._stack:
            while self._stack:
                top = self._stack.pop()
                self._skip -= top in self.SKIP
                if top == tag:
                    break

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    if build.chromium() is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium): the browser "
                    "test needs /usr/bin/chromium")
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        pytest.skip("MkDocs is not installed (pip install -e '.[docs]'): the site cannot be built")
    has_katex = os.environ.get("KATEX_DIST") or (
        build.NPM_PREFIX / "node_modules" / "katex" / "dist" / "katex.min.js").is_file()
    if not has_katex and shutil.which("npm") is None:
        pytest.skip("npm is not installed and KaTeX is not under docs/_build/npm: the site "
                    "cannot get KaTeX")
    return build.build(strict=True, site_dir=tmp_path_factory.mktemp("site"))


def _chromium(*args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(build.chromium_command(build.chromium(), Path(profile), *args),
                              capture_output=True, text=True, timeout=90)


@pytest.mark.slow
def test_every_equation_page_renders_every_formula_offline(site, tmp_path):
    chapters = [c for c in spec.CHAPTERS if (site / "equations" / f"{c}.html").is_file()]
    assert chapters, "the site has no chapter page"
    pages = [f"equations/{c}.html" for c in chapters] + ["equations/index.html", "index.html"]
    for html_file in site.rglob("*.html"):  # nothing on any page loads from another host
        static = _parse(html_file.read_text())
        assert not static.external, f"{html_file.name} loads {static.external}"

    with build.LocalServer(site) as server:
        def render(page: str) -> tuple[str, str]:
            result = _chromium("--virtual-time-budget=10000", "--dump-dom", server.url + page)
            assert result.returncode == 0, result.stderr[-2000:]
            return page, result.stdout

        with ThreadPoolExecutor(max_workers=4) as pool:
            dumped = list(pool.map(render, pages))
        shot = tmp_path / "equation_page.png"
        result = _chromium("--window-size=1280,1600", "--virtual-time-budget=10000",
                           f"--screenshot={shot}", server.url + build.SCREENSHOT_PAGE)
        requests = list(server.requests)

    for page, dom in dumped:
        formulas = _parse((site / page).read_text()).formulas
        rendered = _parse(dom)
        text = "".join(rendered.text)
        if page.startswith("equations/") and page != "equations/index.html":
            assert formulas >= 1, f"{page} has no formula"
        assert rendered.katex >= formulas, (
            f"{page}: {rendered.katex} KaTeX elements for {formulas} formulas")
        assert rendered.errors == 0, f"{page}: {rendered.errors} formulas KaTeX could not parse"
        for raw in ("$$", "\\(", "\\["):
            assert raw not in text, f"{page}: unrendered math {raw!r} left in the text"
    for html_file in site.rglob("*.html"):  # what a reader sees: no markup left unrendered
        seen = "".join(_parse(html_file.read_text()).text)
        left = [raw for raw in ("====", "**", ".. math::", ":func:", ":math:", ":class:", "``")
                if raw in seen]
        assert not left, f"{html_file.relative_to(site)} shows leftover markup {left}"

    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.stat().st_size > 30_000, "the screenshot looks blank"
    assert any(r.startswith("/assets/katex/katex.min.js") for r in requests)
    assert any("/assets/katex/fonts/" in r for r in requests), "KaTeX's fonts were not loaded"
