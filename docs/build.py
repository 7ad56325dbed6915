"""Build the documentation site: pages generated from the registry, KaTeX served locally, MkDocs.

    python docs/build.py                  # → docs/_build/site
    python docs/build.py --strict         # CI: a warning (broken link, missing page) fails
    python docs/build.py --serve          # live preview on http://127.0.0.1:8000
    python docs/build.py --generate-only  # write docs/_generated/ and stop
    python docs/build.py --screenshot     # also refresh docs/results/screenshots/equation_page.png

The equation pages are generated from `spec.catalogue()` every time, so they cannot drift from
the code: one page per chapter (in the order of `spec.CHAPTERS`) with, for each equation, its
formula, signature, docstring, sources, errata, identities and tiers, backend limits and its
latest conformance status per backend from the committed reports in docs/results/conformance/.
The hand-written pages live in docs/src/. Everything is assembled in docs/_generated/ (the MkDocs
`docs_dir`) and built into docs/_build/site/; both are build outputs, never committed.

Math is rendered in the browser by KaTeX, which is installed from the npm registry at build time
(`npm install --no-save --prefix docs/_build/npm katex@0.16`, once, then reused) and served with
the site: the pages fetch nothing from any other host. Set KATEX_DIST to a KaTeX `dist` folder
to build with no npm at all.
"""

from __future__ import annotations

import argparse
import ast
import datetime as _dt
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
SRC = DOCS / "src"
GENERATED = DOCS / "_generated"
BUILD = DOCS / "_build"
SITE = BUILD / "site"
CONFIG = DOCS / "mkdocs.yml"
RESULTS = DOCS / "results"
CONFORMANCE = RESULTS / "conformance"
EXAMPLES = DOCS / "examples"
NPM_PREFIX = BUILD / "npm"
KATEX_PACKAGE = "katex@0.16"
KATEX_ASSETS = "assets/katex"
SCREENSHOT = RESULTS / "screenshots" / "equation_page.png"
#: the page the screenshot shows, from its top (Chromium's headless screenshot of a page
#: scrolled to an #anchor comes out partly blank)
SCREENSHOT_PAGE = "equations/probability.html"
#: the pages `--screenshot` photographs (file in docs/results/screenshots → page of the site):
#: the catalogue, a chapter of plain functions, one with parameter tables, one with named
#: variants, the conformance results and the frameworks' kernels refereed
SCREENSHOTS = {
    "catalogue.png": "equations/index.html",
    "equation_page.png": SCREENSHOT_PAGE,
    "transformer_parameter_tables.png": "equations/transformer.html",
    "activations_variants.png": "equations/activations.html",
    "conformance_results.png": "conformance.html",
    "natives.png": "natives.html",
}

if str(ROOT) not in sys.path:  # `python docs/build.py` from a clone that is not installed
    sys.path.insert(0, str(ROOT))

MARK = {"passed": "✅", "failed": "❌", "skipped": "⏭", "missing": "⚠️", "n/a": "—"}
NOT_RUN = "not yet run"


class BuildError(RuntimeError):
    """A build step that cannot go on, with what to do about it."""


# ----------------------------------------------------------------------------- markdown text
_INLINE = re.compile(
    r"(?P<code2>``.+?``)"  # rST literal
    r"|(?P<code>`[^`\n]+`)"  # Markdown code span (or rST default role)
    r"|(?P<role>:math:`[^`]+`)"  # rST math role
    r"|(?P<xref>:(?:py:)?(?:func|class|meth|mod|attr|data|obj):`[^`]+`)"  # rST cross-reference
    r"|(?P<math>\$[^$\n]+\$)"  # inline math, left to arithmatex
    r"|(?P<url>https?://[^\s)\]>\"'`]+[^\s)\]>\"'`.,;:!?])"  # a bare address: a link
    r"|(?P<strong>(?<![\w*])\*\*(?=\S)[^*\n]+?(?<=\S)\*\*(?![\w*]))"  # **strong**
    r"|(?P<em>(?<![\w*])\*(?=\S)[^*\n]+?(?<=\S)\*(?![\w*]))"  # *emphasis*
)


def md_text(text: str, *, table: bool = False, names: dict[str, str] | None = None) -> str:
    """Plain text (a docstring line, an identity, an erratum) as safe Markdown.

    Code spans, *emphasis* and $math$ pass through (a code span naming a registered equation
    becomes a link to it, through `names`: name → url); everything else is escaped, so that
    `x_i` or `a*b` in prose stays literal. `table` escapes `|` for a table cell.
    """
    out: list[str] = []
    pos = 0
    for m in _INLINE.finditer(text):
        out.append(_escape(text[pos:m.start()], table))
        token = m.group(0)
        if m.lastgroup == "code2":
            token = token[1:-1]
        if m.lastgroup == "url":
            token = f"<{token}>"
        if m.lastgroup == "role":
            token = "$" + token[len(":math:`"):-1] + "$"
        if m.lastgroup == "xref":  # :func:`~spec.rope` → `rope()`, linked where registered
            target = token[token.index("`") + 1:-1].lstrip("~").removeprefix("spec.")
            token = f"`{target}()`" if ":func:" in m.group(0) else f"`{target}`"
        if m.lastgroup in ("code", "code2", "xref"):
            name = token.strip("`").removesuffix("()")
            if table:
                token = token.replace("|", "\\|")
            if names and name in names:
                token = f"[{token}]({names[name]})"
        out.append(token)
        pos = m.end()
    out.append(_escape(text[pos:], table))
    return "".join(out)


def _escape(text: str, table: bool) -> str:
    text = re.sub(r"([\\*_\[\]#`])", r"\\\1", text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|") if table else text


def display_math(tex: str, indent: str = "") -> str:
    """A display formula for arithmatex: `$$` fences on their own lines, no blank line inside."""
    lines = [line.rstrip() for line in tex.strip().splitlines() if line.strip()]
    return "\n".join(indent + line for line in ["$$", *lines, "$$"])


_ADMONITIONS = {"note", "warning", "danger", "tip", "hint", "important", "caution",
                "attention", "error", "seealso"}
#: labels that start a paragraph of their own in a docstring, shown in bold
_LABELS = (r"(?:Shapes?|Sources?|Returns?|Raises|Notes?|Errata|Examples?|Complexity|"
           r"Conventions?|References?|See also|Args|Arguments|Parameters|Inputs?|Outputs?|"
           r"Warning|Limits?|Dtypes?|Precision|Stability|Numerics|Accuracy|Cost|Memory)")
_FIELD = re.compile(rf"^{_LABELS}:(?=\s)")
_SENTENCE_FIELD = re.compile(rf"(?<=[.;)]) (?={_LABELS}:\s)")


def rst_to_markdown(doc: str, *, names: dict[str, str] | None = None) -> str:
    """A docstring's body (rST-flavoured plain text) as Markdown.

    `.. math::` blocks become display math, `>>>` examples and `::` literal blocks become code,
    `.. note::` and friends admonitions, lists stay lists, and labels such as `Shapes:` or
    `Source:` start their own paragraph, in bold.
    """
    lines = doc.expandtabs().splitlines()
    out: list[str] = []
    para: list[str] = []
    base = min((len(s) - len(s.lstrip()) for s in lines if s.strip()), default=0)
    i = 0

    def flush() -> None:
        if para:
            text = " ".join(s.strip() for s in para)
            for piece in _SENTENCE_FIELD.split(text):
                piece = md_text(piece, names=names)
                piece = re.sub(rf"^({_LABELS}):(?=\s)", r"**\1:**", piece)
                out.extend([piece, ""])
            para.clear()

    def block(start: int, base: int) -> tuple[list[str], int]:
        """The lines after `start` indented deeper than `base` (blank lines inside kept)."""
        j, body = start, []
        while j < len(lines):
            line = lines[j]
            if line.strip() and len(line) - len(line.lstrip()) <= base:
                break
            body.append(line)
            j += 1
        while body and not body[-1].strip():
            body.pop()
        return _dedent(body), j

    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if not stripped:
            flush()
            i += 1
            continue
        directive = re.match(r"\.\. ([\w-]+)::\s*(.*)$", stripped)
        if directive:
            flush()
            kind, arg = directive.groups()
            body, i = block(i + 1, indent)
            if kind == "math":
                tex = "\n".join([arg, *body]) if arg else "\n".join(body)
                for formula in re.split(r"\n\s*\n", tex.strip()):
                    out.extend([display_math(formula), ""])
            elif kind in _ADMONITIONS:
                kind = "info" if kind == "seealso" else kind
                inner = rst_to_markdown("\n".join([arg, *body]).strip(), names=names)
                out.append(f"!!! {kind}")
                out.extend("    " + s if s else "" for s in ["", *inner.splitlines()])
                out.append("")
            else:  # an unknown directive: keep its text
                inner = rst_to_markdown("\n".join([arg, *body]).strip(), names=names)
                out.extend([*inner.splitlines(), ""])
            continue
        if stripped.startswith(">>>"):
            flush()
            j = i
            while j < len(lines) and lines[j].strip():
                j += 1
            out.extend(["```pycon", *_dedent(lines[i:j]), "```", ""])
            i = j
            continue
        if _TABLE_RULE.match(stripped):  # an rST simple table
            flush()
            table, i = simple_table(lines, i, names=names)
            out.extend([*table, ""])
            continue
        if not para and indent > base:  # an indented block (after `::` or not): code
            body, i = block(i, base)
            out.extend([f"```{_language(body)}", *body, "```", ""])
            continue
        bullet = re.match(r"([-*+]|\d+[.)]) (.*)$", stripped)
        if bullet:
            flush()
            marker = "-" if bullet.group(1) in "-*+" else "1."
            item = [bullet.group(2)]
            i += 1
            while i < len(lines) and lines[i].strip() and (
                    len(lines[i]) - len(lines[i].lstrip()) > indent
                    and not re.match(r"([-*+]|\d+[.)]) ", lines[i].strip())):
                item.append(lines[i].strip())
                i += 1
            out.append(f"{marker} " + md_text(" ".join(item), names=names))
            if i >= len(lines) or not lines[i].strip() or not re.match(
                    r"([-*+]|\d+[.)]) ", lines[i].strip()):
                out.append("")
            continue
        if _FIELD.match(stripped) and para:
            flush()
        if stripped.endswith("::"):
            text = stripped[:-2].rstrip()
            if text:
                para.append(text + ":")
            flush()
            i += 1
            continue
        para.append(stripped)
        i += 1
    flush()
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)


_TABLE_RULE = re.compile(r"^=+( +=+)+$")


def simple_table(lines: list[str], start: int, *, names=None) -> tuple[list[str], int]:
    """The rST simple table whose top rule is lines[start], as a Markdown table; and the index
    after its bottom rule. Columns are where the rule's `=` runs are (the last one open to the
    right); the header is the rows before the second rule; a row whose first cell is blank
    continues the row above it."""
    rule = lines[start]
    offset = len(rule) - len(rule.lstrip())
    spans = [(offset + m.start(), offset + m.end()) for m in re.finditer("=+", rule.strip())]

    def cells(line: str) -> list[str]:
        bounds = [a for a, _ in spans] + [None]
        return [line[bounds[k]:bounds[k + 1]].strip() for k in range(len(spans))]

    sections: list[list[list[str]]] = [[]]
    i = start + 1
    while i < len(lines):
        stripped = lines[i].strip()
        if _TABLE_RULE.match(stripped):
            i += 1
            if i >= len(lines) or not lines[i].strip():
                break  # the bottom rule: a blank line or the end follows it
            sections.append([])  # the rule under the header
            continue
        if stripped:
            row = cells(lines[i])
            if sections[-1] and not row[0]:  # a continuation line
                sections[-1][-1] = [f"{a} {b}".strip() for a, b in zip(sections[-1][-1], row)]
            else:
                sections[-1].append(row)
        i += 1
    header, body = (sections[0], sections[1]) if len(sections) > 1 else ([], sections[0])
    if not header:
        header = [[""] * len(spans)]

    def line(row: list[str]) -> str:
        return "| " + " | ".join(md_text(c, table=True, names=names) for c in row) + " |"

    head = [" ".join(col).strip() for col in zip(*header)]
    return [line(head), "|" + "---|" * len(spans), *(line(r) for r in body)], i


def _dedent(lines: list[str]) -> list[str]:
    widths = [len(s) - len(s.lstrip()) for s in lines if s.strip()]
    cut = min(widths, default=0)
    return [s[cut:].rstrip() for s in lines]


def _language(body: list[str]) -> str:
    first = next((s.strip() for s in body if s.strip()), "")
    if first.startswith(">>>"):
        return "pycon"
    if re.match(r"([A-Z_]+=\S*\s+)*(python3?|pip|pytest|npm|\.venv/|bash|cd|export)\b", first):
        return "bash"
    return "text"


def heading_title(text: str) -> str:
    """The first Markdown heading of a page, else ''."""
    m = re.search(r"^#\s+(.+?)\s*#*\s*$", text, re.M)
    return m.group(1).strip() if m else ""


# ----------------------------------------------------------------------------- the reports
def load_reports(directory: Path = CONFORMANCE) -> dict[str, dict]:
    """The newest committed result for every backend: id → {info, matrix, failures, run}.

    Reads report.json and every per-backend <id>.json; where several files hold a backend,
    the one created last wins (a GPU run committed on its own after the combined CPU run).
    """
    found: dict[str, dict] = {}
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            report = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise BuildError(f"{path}: not a readable conformance report ({exc})") from exc
        if not isinstance(report, dict) or "matrix" not in report:
            continue
        for info in report.get("backends", []):
            backend_id = info.get("id")
            if backend_id not in report["matrix"]:
                continue
            created = report.get("created", "")
            if backend_id in found and found[backend_id]["run"]["created"] >= created:
                continue
            found[backend_id] = {
                "info": info,
                "matrix": report["matrix"][backend_id],
                # equation → identity key → tier → cell with its tests (reports since issue 11)
                "identities": (report.get("identities") or {}).get(backend_id, {}),
                "failures": [f for f in report.get("failures", [])
                             if f.get("backend") in (backend_id, None)],
                "run": {"created": created,
                        "commit": report.get("commit") or "",
                        "profile": report.get("hypothesis_profile", ""),
                        "python": report.get("python", ""),
                        "platform": report.get("platform", ""),
                        "file": path.name,
                        "wall_time_s": report.get("wall_time_s")},
            }
    return found


def _backend_order(ids: Iterable[str]) -> list[str]:
    import backends

    known = list(backends.IDS)
    return sorted(ids, key=lambda b: (known.index(b) if b in known else len(known), b))


def equation_status(rec, reports: dict[str, dict], backend_id: str) -> str:
    """One symbol for an equation on one backend: ❌ > ⚠️ > ⏭ > ✅, or 'not yet run'."""
    row = reports.get(backend_id, {}).get("matrix", {}).get(rec.name)
    if row is None:
        return NOT_RUN
    statuses = [row.get(t, {}).get("status", "missing") for t in rec.tiers]
    for status in ("failed", "missing"):
        if status in statuses:
            return MARK[status]
    if "passed" not in statuses:
        return MARK["skipped"] if "skipped" in statuses else NOT_RUN
    return MARK["passed"] + (" " + MARK["skipped"] if "skipped" in statuses else "")


# ----------------------------------------------------------------------------- the pages
class Site:
    """Everything the generated pages are made of, read once."""

    def __init__(self, reports: dict[str, dict] | None = None) -> None:
        import backends
        import spec

        self.spec = spec
        self.backends = backends
        self.catalogue = spec.catalogue()
        self.chapters = dict(spec.CHAPTERS)
        self.reports = load_reports() if reports is None else reports
        self.report_ids = _backend_order(self.reports)
        self.by_chapter = {c: [r for r in self.catalogue.values() if r.chapter == c]
                           for c in self.chapters}
        # where each equation is documented, as a link from a page in equations/
        self.names = {n: f"{r.chapter}.md#{anchor(n)}" for n, r in self.catalogue.items()}

    def links_from(self, folder: str) -> dict[str, str]:
        """name → link to its section, from a page in `folder` ('', 'equations', 'examples')."""
        prefix = {"": "equations/", "equations": ""}.get(folder, "../equations/")
        return {n: prefix + url for n, url in self.names.items()}

    @property
    def populated(self) -> list[str]:
        return [c for c, recs in self.by_chapter.items() if recs]


def anchor(name: str) -> str:
    return name.lower().replace("_", "-")


def seed_citations(seeds: Iterable[str], spec_module, link_prefix: str = "../") -> str:
    """Seeds as cited in records ("002 §2.1.1"), grouped by article, each linked to its entry
    on the sources page, where its title is: `002 §2.1.1, §2.2`."""
    grouped: dict[str, list[str]] = {}
    for seed in seeds:
        number, _, section = seed.strip().partition(" ")
        grouped.setdefault(number, [])
        if section:
            grouped[number].append(section)
    out = []
    for number, sections in grouped.items():
        where = (" " + md_text(", ".join(sections))) if sections else ""
        if number not in spec_module.SEEDS:
            out.append(f"{md_text(number)}{where}")
        else:
            out.append(f"[{number}]({link_prefix}sources.md#seed-{number}){where}")
    return "; ".join(out)


def status_columns(site: Site, records: list):
    """Header cells and a row function for an overview table's status columns: one column per
    backend that has run any of `records`, or a single column when none has."""
    ids = [b for b in site.report_ids
           if any(r.name in site.reports[b]["matrix"] for r in records)]
    if not ids:
        return ["conformance"], lambda rec: [NOT_RUN]
    return ids, lambda rec: [equation_status(rec, site.reports, b) for b in ids]


#: front matter for wide pages (their tables are their table of contents)
_HIDE_TOC = "---\nhide:\n  - toc\n---\n"


def chapter_page(site: Site, chapter: str) -> str:
    records = site.by_chapter[chapter]
    title = site.chapters[chapter]
    module = records[0].module
    intro = ""
    mod = sys.modules.get(module)
    if mod is not None and mod.__doc__:
        intro = rst_to_markdown(mod.__doc__.strip(), names=site.links_from("equations"))
    links = site.links_from("equations")
    out = [_HIDE_TOC, f"# {title}", "", intro, "",
           f"Module `{module}` · {len(records)} equation{'s' * (len(records) != 1)} · "
           "generated from `spec.catalogue()`; statuses from the committed reports "
           "([tiers](../tiers.md), [results](../conformance.md)).", ""]
    heads, cells = status_columns(site, records)
    out.append("| equation | summary | " + " | ".join(heads) + " |")
    out.append("|---|---|" + "---|" * len(heads))
    for rec in records:
        out.append(f"| [`{rec.name}`](#{anchor(rec.name)}) | "
                   f"{md_text(rec.summary, table=True, names=links)} | "
                   + " | ".join(cells(rec)) + " |")
    out.append("")
    for rec in records:
        out += ["", equation_section(site, rec, links), ""]
    return "\n".join(out).rstrip() + "\n"


def equation_section(site: Site, rec, links: dict[str, str]) -> str:
    out = [f"## `{rec.name}` {{ #{anchor(rec.name)} }}", "",
           display_math(rec.latex), "",
           "```python", rec.signature, "```", ""]
    out += [f"**{md_text(rec.summary, names=links)}**", ""]
    body = rec.doc.split("\n", 1)[1] if "\n" in rec.doc else ""
    body = _drop_duplicate_math(body, rec.latex)
    if body.strip():
        out += [rst_to_markdown(body.strip(), names=links), ""]
    facts = [f"tiers {' '.join(f'[{t}](../tiers.md#tier-{t.lower()})' for t in rec.tiers)}",
             f"dtypes {', '.join(rec.dtypes)}"]
    if rec.oracle:
        facts.append(f"oracle {md_text(rec.oracle)}")
    out += ["**Record:** " + " · ".join(facts) + f" · module `{rec.module}`", ""]
    if rec.seeds:
        out += ["**Articles:** " + seed_citations(rec.seeds, site.spec), ""]
    if rec.errata:
        out.append('!!! warning "Errata"')
        out.append("")
        for erratum in rec.errata:
            out.append("    - " + md_text(erratum, names=links))
        out += ["", "    All errata: [errata](../errata.md).", ""]
    if rec.identities:
        out += ["**Identities proven** (status per tier over the committed runs; the tests "
                "that prove each)", "",
                "| identity | statement | tiers | tests |", "|---|---|---|---|"]
        for ident in rec.identities:
            tiers, tests = identity_status(site, rec.name, ident)
            out.append(f"| `{ident.key}` | {md_text(ident.statement, table=True, names=links)}"
                       f" | {tiers} | {tests} |")
        out.append("")
    if rec.limits:
        out += ["**Known backend limits**", ""]
        for lim in rec.limits:
            scope = f"tiers {' '.join(lim.tiers)}"
            if lim.note:
                scope += f", input “{md_text(lim.note)}”"
            link = f" ([upstream]({lim.link}))" if lim.link else ""
            out.append(f"- `{lim.backend}` ({scope}): {md_text(lim.reason, names=links)}{link}")
        out.append("")
    out += status_table(site, rec)
    return "\n".join(out).rstrip()


def _drop_duplicate_math(body: str, latex: str) -> str:
    """Remove the docstring's `.. math::` block where it says what the record's LaTeX says."""
    def norm(tex: str) -> str:
        tex = re.sub(r"\\[,;!: ]|\\q?quad|\\(?:math)?(?:rm|operatorname)\b|[\s{}]", "", tex)
        return tex.replace("\\mathcal", "").replace("\\textstyle", "")

    m = re.search(r"^([ \t]*)\.\. math::[ \t]*(.*)\n((?:\1[ \t]+\S.*\n?|[ \t]*\n)*)", body, re.M)
    if m and norm(m.group(2) + m.group(3)) == norm(latex):
        return body[:m.start()] + body[m.end():]
    return body


def identity_status(site: Site, name: str, ident) -> tuple[str, str]:
    """An identity's cells: each tier linked to its legend with its status over the committed
    runs that record identities (❌ a failure on any backend, ⚠️ no test, ✅ passed, ⏭ only
    skipped), and the test functions that prove it."""
    cells, tests = [], set()
    for tier in ident.tiers:
        statuses = []
        for backend_id in site.report_ids:
            cell = (site.reports[backend_id].get("identities", {}).get(name, {})
                    .get(ident.key, {}).get(tier))
            if cell is not None:
                statuses.append(cell.get("status", "missing"))
                tests.update(cell.get("tests", ()))
        if not statuses:
            mark = NOT_RUN
        else:
            mark = next((MARK[s] for s in ("failed", "missing", "passed") if s in statuses),
                        MARK["skipped"])
        cells.append(f"[{tier}](../tiers.md#tier-{tier.lower()}) {mark}")
    shown = ", ".join(f"`{t}`" for t in sorted(tests)[:3]) + (" …" if len(tests) > 3 else "")
    return " · ".join(cells), shown


def provenance(site: Site) -> str:
    """Where the statuses come from: each committed run's date and commit, backends grouped."""
    runs: dict[tuple[str, str], list[str]] = {}
    for backend_id in site.report_ids:
        run = site.reports[backend_id]["run"]
        runs.setdefault((run["created"][:10], run.get("commit", "")), []).append(backend_id)
    parts = [", ".join(f"`{b}`" for b in ids) + f" on {date}"
             + (f" at commit `{commit}`" if commit else " (commit not recorded)")
             for (date, commit), ids in runs.items()]
    return "Statuses from the committed runs: " + "; ".join(parts) + "."


def status_table(site: Site, rec) -> list[str]:
    from spec import TIERS

    ids = site.report_ids
    out = ["**Conformance** (latest committed run per backend)", ""]
    if ids:
        out += [provenance(site), ""]
    if not ids:
        return [*out, f"*{NOT_RUN}*: no conformance report is committed yet.", ""]
    header = ["| backend | " + " | ".join(f"[{t}](../tiers.md#tier-{t.lower()})"
                                         for t in TIERS) + " |", "|---|" + "---|" * len(TIERS)]
    if not any(rec.name in site.reports[b]["matrix"] for b in ids):
        cells = [NOT_RUN if t in rec.tiers else MARK["n/a"] for t in TIERS]
        return [*out, f"*{NOT_RUN.capitalize()}* on any backend: the committed reports predate "
                "this equation.", "", *header,
                f"| {', '.join(f'`{b}`' for b in ids)} | " + " | ".join(cells) + " |", ""]
    out += header
    notes: list[str] = []
    failures: list[dict] = []
    for backend_id in ids:
        row = site.reports[backend_id]["matrix"].get(rec.name)
        cells = []
        for tier in TIERS:
            if tier not in rec.tiers:
                cells.append(MARK["n/a"])
                continue
            if row is None:
                cells.append(NOT_RUN)
                continue
            cell = row.get(tier, {"status": "missing"})
            status = cell.get("status", "missing")
            text = MARK.get(status, status)
            if status == "passed":
                text += f" {cell.get('passed', 0)}"
            elif status == "failed":
                text += f" {cell.get('failed', 0)}/{cell.get('passed', 0) + cell.get('failed', 0)}"
            for reason in cell.get("reasons", []):
                first = reason.splitlines()[0] if reason else ""
                if first not in notes:
                    notes.append(first)
                text += f" [{notes.index(first) + 1}]"
            cells.append(text)
        out.append(f"| `{backend_id}` | " + " | ".join(cells) + " |")
        failures += [f for f in site.reports[backend_id]["failures"]
                     if rec.name in f.get("equations", []) and f not in failures]
    out.append("")
    for k, note in enumerate(notes, 1):
        out.append(f"{k}. {md_text(note)}")
    if notes:
        out.append("")
    if failures:
        out += ['??? failure "Failures in the committed reports"', ""]
        for f in failures:
            out += [f"    `{f.get('nodeid', '')}`", "", "    ```text",
                    *("    " + s for s in str(f.get("message", "")).splitlines()), "    ```", ""]
    return out


def catalogue_page(site: Site) -> str:
    total = len(site.catalogue)
    out = [_HIDE_TOC, "# Catalogue of equations", "",
           f"{total} equations in {len(site.populated)} of {len(site.chapters)} chapters, "
           "generated from `spec.catalogue()`: every formula, signature and docstring on these "
           "pages is read from the code itself. The status columns summarise the latest "
           "committed conformance run of each backend (✅ every applicable tier passed, ⏭ some "
           "tests skipped with a documented reason, ❌ a failure, ⚠️ a tier without a test, "
           f"*{NOT_RUN}*: the equation is newer than the committed report). Details: "
           "[tiers](../tiers.md), [results](../conformance.md).", ""]
    if site.report_ids:
        out += [provenance(site), ""]
    for chapter, title in site.chapters.items():
        records = site.by_chapter[chapter]
        if not records:
            out += [f"## {title}", "", f"*No equation registered yet* (`spec.{chapter}`).", ""]
            continue
        out += [f"## [{title}]({chapter}.md)", ""]
        heads, cells = status_columns(site, records)
        out.append("| equation | summary | " + " | ".join(heads) + " |")
        out.append("|---|---|" + "---|" * len(heads))
        for rec in records:
            out.append(f"| [`{rec.name}`]({chapter}.md#{anchor(rec.name)}) | "
                       f"{md_text(rec.summary, table=True)} | " + " | ".join(cells(rec)) + " |")
        out.append("")
    return "\n".join(out)


def tiers_page(site: Site) -> str:
    from spec import TIERS

    counts = {t: sum(t in r.tiers for r in site.catalogue.values()) for t in TIERS}
    out = ["# Conformance tiers", "",
           "Every equation is checked in every tier that applies to it (its record's `tiers`); "
           "each identity in its record names the tiers that prove it. From "
           "`spec._registry.TIERS`:", ""]
    for tier, text in TIERS.items():
        name, _, what = text.partition(":")
        out += [f"## {tier} — {name} {{ #tier-{tier.lower()} }}", "",
                md_text(what.strip().capitalize()) + ".", "",
                f"Applies to {counts[tier]} of {len(site.catalogue)} equations.", ""]
    out += ["## Reading a cell { #cells }", "",
            "| mark | meaning |", "|---|---|",
            f"| {MARK['passed']} n | n tests passed |",
            f"| {MARK['failed']} k/n | k of n tests failed (the failure is listed under the "
            "table) |",
            f"| {MARK['skipped']} [k] | skipped, for the reason in note k: a missing library or "
            "device, or a documented backend limit with its upstream link |",
            f"| {MARK['missing']} | the tier applies but no test covers it: a gap |",
            f"| {MARK['n/a']} | the tier does not apply to this equation |",
            f"| {NOT_RUN} | the equation is newer than the backend's committed report |", "",
            "Tier S runs the spec's code on SymPy expressions, independent of the backend, so its "
            "result is repeated under every backend. More in "
            "[reading the report](guide/reading-the-report.md).", ""]
    return "\n".join(out)


def backends_page(site: Site) -> str:
    import importlib

    backends = site.backends
    out = [_HIDE_TOC, "# Backends", "",
           "The backends this project names (`backends.IDS`) and what the committed conformance "
           "reports say about each. Any other importable Array API namespace runs too: "
           "`SPEC_BACKEND=my.namespace python -m conformance` (see "
           "[adding a backend](guide/adding-a-backend.md)).", "",
           "| id | what | library | autograd | device (last run) | float dtypes | "
           "last run | result |", "|---|---|---|---|---|---|---|---|"]
    for backend_id in _backend_order(set(backends.IDS) | set(site.reports)):
        what = library = autograd = ""
        base = backend_id.split(":")[0]
        try:
            module = importlib.import_module(f"backends.{base}")
        except ImportError:
            module = None
        if module is not None:
            what = (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else ""
            classes = [c for c in vars(module).values() if isinstance(c, type)
                       and issubclass(c, backends.Backend) and c is not backends.Backend
                       and c.__module__ == module.__name__]
            if classes:
                library = classes[0].library
                autograd = "yes" if classes[0].has_autograd else ""
        entry = site.reports.get(backend_id)
        if entry:
            info, run = entry["info"], entry["run"]
            versions = ", ".join(f"{k} {v}" for k, v in info.get("versions", {}).items())
            library = versions or library
            device = info.get("device", "")
            dtypes = ", ".join(info.get("float_dtypes", []))
            when = run["created"][:10]
            result = _backend_result(site, backend_id)
            report = f"[{when}](results/conformance/{Path(run['file']).stem}.md)"
        else:
            device, dtypes, report, result = "", "", NOT_RUN, ""
        out.append(f"| `{backend_id}` | {md_text(what, table=True)} | "
                   f"{md_text(library, table=True)}"
                   f" | {autograd} | {md_text(device, table=True)} | {dtypes} | {report} | "
                   f"{result} |")
    out += ["", "*result*: equations on that backend with every applicable tier passed (✅), "
            "with some tests skipped for a documented reason (⏭), with a failure (❌) or a "
            "tier without a test (⚠️), and equations newer than its report.", "",
            "Install commands and how a backend is chosen: "
            "[running the suite](guide/running.md).", ""]
    return "\n".join(out)


def _backend_result(site: Site, backend_id: str) -> str:
    counts: dict[str, int] = {}
    for rec in site.catalogue.values():
        s = equation_status(rec, site.reports, backend_id)
        key = NOT_RUN if s == NOT_RUN else s.split()[0] if "⏭" not in s else MARK["skipped"]
        counts[key] = counts.get(key, 0) + 1
    order = [MARK["passed"], MARK["skipped"], MARK["failed"], MARK["missing"], NOT_RUN]
    return ", ".join(f"{k} {counts[k]}" if k != NOT_RUN else f"{counts[k]} {k}"
                     for k in order if counts.get(k))


def conformance_page(site: Site, raw_reports: list[str]) -> str:
    out = [_HIDE_TOC, "# Conformance results", "",
           "The latest committed run of the conformance suite for each backend "
           "(`docs/results/conformance/`, written by `python -m conformance --report DIR`). "
           "Cells as in the [tier legend](tiers.md#cells).", ""]
    if not site.reports:
        return "\n".join([*out, f"*{NOT_RUN}*: no report is committed yet.", ""])
    out += [provenance(site), "",
            "| backend | device | created | commit | Hypothesis profile | Python | wall time "
            "| report |", "|---|---|---|---|---|---|---|---|"]
    for backend_id in site.report_ids:
        entry = site.reports[backend_id]
        run = entry["run"]
        wall = f"{run['wall_time_s']:.0f} s" if isinstance(run["wall_time_s"], (int, float)) else ""
        stem = Path(run["file"]).stem
        out.append(f"| `{backend_id}` | {md_text(entry['info'].get('device', ''), table=True)} | "
                   f"{run['created']} | {run.get('commit') or '—'} | `{run['profile']}` | "
                   f"{run['python']} | {wall} | "
                   f"[{stem}.md](results/conformance/{stem}.md) · "
                   f"[json](results/conformance/{stem}.json) |")
    out += ["", "## Equation × backend", ""]
    ids = site.report_ids
    out.append("| chapter | equation | " + " | ".join(ids) + " |")
    out.append("|---|---|" + "---|" * len(ids))
    for rec in site.catalogue.values():
        cells = [equation_status(rec, site.reports, b) for b in ids]
        out.append(f"| {rec.chapter} | [`{rec.name}`](equations/{rec.chapter}.md#"
                   f"{anchor(rec.name)}) | " + " | ".join(cells) + " |")
    out.append("")
    unknown = sorted({n for e in site.reports.values() for n in e["matrix"]}
                     - set(site.catalogue))
    if unknown:
        out += ["Reported but no longer registered: " + ", ".join(f"`{n}`" for n in unknown)
                + ".", ""]
    if raw_reports:
        out += ["## The reports as written", ""]
        out += [f"- [{Path(p).name}]({p})" for p in raw_reports]
        out.append("")
    return "\n".join(out)


def errata_page(site: Site) -> str:
    out = ["# Errata", "",
           "Where a source article states a formula imprecisely, the spec implements the "
           "standard, correct form, and the equation's record says what differs and why. "
           "Generated from the `errata` of every record.", ""]
    with_errata = [r for r in site.catalogue.values() if r.errata]
    if not with_errata:
        out += ["*No erratum is recorded yet.*", ""]
    for rec in with_errata:
        out += [f"## [`{rec.name}`](equations/{rec.chapter}.md#{anchor(rec.name)})", "",
                "Sources: " + seed_citations(rec.seeds, site.spec, ""), ""]
        out += ["- " + md_text(e, names=site.links_from("")) for e in rec.errata]
        out.append("")
    return "\n".join(out)


def sources_page(site: Site) -> str:
    out = ["# Sources", "",
           "Every equation cites the articles it comes from by number (and section, as in "
           "“002 §2.1.1”). The articles are the project's seed material; they are cited here, "
           "not published. Where one states a formula wrongly, the [errata](errata.md) page "
           "says so and names the test that tells the two forms apart.", ""]
    for number, title in site.spec.SEEDS.items():
        cited = [r for r in site.catalogue.values()
                 if any(s.split(" ")[0] == number for s in r.seeds)]
        out += [f"## {number} — {md_text(title)} {{ #seed-{number} }}", "",
                f"Cited by {len(cited)} equation{'s' * (len(cited) != 1)}"
                + (": " + ", ".join(f"[`{r.name}`](equations/{r.chapter}.md#{anchor(r.name)})"
                                    for r in cited) if cited else "") + ".", ""]
    return "\n".join(out)


# ----------------------------------------------------------------------------- examples, results
def example_pages(site: Site) -> dict[str, str]:
    scripts = sorted(EXAMPLES.glob("*.py")) if EXAMPLES.is_dir() else []
    figures = sorted(p for p in (RESULTS / "examples").glob("*") if p.is_file()) \
        if (RESULTS / "examples").is_dir() else []
    pages: dict[str, str] = {}
    owned: set[Path] = set()
    for script in scripts:
        source = script.read_text()
        doc = ast.get_docstring(ast.parse(source)) or ""
        title, _, body = doc.partition("\n")
        mine = [f for f in figures if _owns(source, f)]
        owned.update(mine)
        out = [f"# {md_text(title.rstrip('.')) or script.stem}", "",
               f"`docs/examples/{script.name}`", "",
               rst_to_markdown(body.strip(), names=site.links_from("examples")), "",
               "```bash", f"python docs/examples/{script.name} --help", "```", ""]
        if mine:
            out += ["## Results", "", "From `docs/results/examples/`:", ""]
            for f in mine:
                url = f"../results/examples/{f.name}"
                if f.suffix.lower() in (".png", ".svg", ".jpg", ".jpeg", ".gif"):
                    out += [f"![{f.stem}]({url})", "", f"*{f.name}*", ""]
                else:
                    out += [f"- [{f.name}]({url})", ""]
        else:
            out += ["*No figures committed yet under `docs/results/examples/`.*", ""]
        out += ['??? example "The script"', "", "    ```python",
                *("    " + s if s else "" for s in source.rstrip().splitlines()), "    ```", ""]
        pages[f"examples/{script.stem}.md"] = "\n".join(out)
    if scripts:
        out = ["# Worked examples", "",
               "Whole programs written with nothing but `spec` functions; each runs on any "
               "backend (`SPEC_BACKEND=...`).", ""]
        for script in scripts:
            page = pages[f"examples/{script.stem}.md"]
            out.append(f"- [{heading_title(page)}]({script.stem}.md) — `{script.name}`")
        leftover = [f for f in figures if f not in owned]
        if leftover:
            out += ["", "Other results:", ""]
            out += [f"- [{f.name}](../results/examples/{f.name})" for f in leftover]
        out.append("")
        pages["examples/index.md"] = "\n".join(out)
    return pages


def _owns(source: str, figure: Path) -> bool:
    stem = figure.stem
    prefix = stem.rsplit("_", 1)[0] if "_" in stem else stem
    return stem in source or (len(prefix) > 3 and (f'"{prefix}_' in source
                                                   or f"'{prefix}_" in source
                                                   or f"{prefix}_{{" in source))


_LINK = re.compile(r"(!?\[[^\]\n]*\]\()([^)\s]+)(\))")


def results_files() -> dict[str, bytes | str]:
    """docs/results/ as it goes into the site; Markdown links to files outside the site
    (source files of the repository) become code, since the site cannot link to them."""
    files: dict[str, bytes | str] = {}
    if not RESULTS.is_dir():
        return files
    for path in sorted(RESULTS.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        rel = "results/" + path.relative_to(RESULTS).as_posix()
        if path.suffix == ".md":
            files[rel] = _localise_links(path.read_text(), path)
        else:
            files[rel] = path.read_bytes()
    return files


def _localise_links(text: str, path: Path) -> str:
    def fix(m: re.Match) -> str:
        target = m.group(2)
        if re.match(r"[a-z][a-z0-9+.-]*:|#|/", target):
            return m.group(0)
        file = (path.parent / target.split("#")[0]).resolve()
        inside = file.is_relative_to(RESULTS.resolve())
        if inside or not file.exists():
            return m.group(0)  # in the site, or truly broken (strict mode says so)
        shown = m.group(1)[1:-2] if not m.group(1).startswith("!") else file.name
        return f"{shown} (`{file.relative_to(ROOT).as_posix()}`)"

    return _LINK.sub(fix, text)


def benchmark_pages() -> list[str]:
    folder = RESULTS / "benchmarks"
    return [f"results/benchmarks/{p.relative_to(folder).as_posix()}"
            for p in sorted(folder.rglob("*.md"))] if folder.is_dir() else []


# ----------------------------------------------------------------------------- assembling
def generate_pages(reports: dict[str, dict] | None = None) -> dict[str, str]:
    """Every generated Markdown page: path in docs_dir → text (no I/O beyond reading)."""
    site = Site(reports)
    raw = [f"results/conformance/{p.name}" for p in sorted(CONFORMANCE.glob("*.md"))] \
        if CONFORMANCE.is_dir() else []
    pages = {
        "equations/index.md": catalogue_page(site),
        "tiers.md": tiers_page(site),
        "backends.md": backends_page(site),
        "conformance.md": conformance_page(site, raw),
        "errata.md": errata_page(site),
        "sources.md": sources_page(site),
    }
    for chapter in site.populated:
        pages[f"equations/{chapter}.md"] = chapter_page(site, chapter)
    pages.update(example_pages(site))
    return pages


def nav(pages: dict[str, str], files: dict[str, bytes | str]) -> list:
    """mkdocs.yml's nav with each `generated: SECTION` entry replaced by its pages."""
    import yaml

    import spec

    config = yaml.load(CONFIG.read_text(), Loader=_Loader)
    sections = {
        "chapters": [{spec.CHAPTERS[c]: f"equations/{c}.md"} for c in spec.CHAPTERS
                     if f"equations/{c}.md" in pages],
        "reports": [{_report_title(p, str(files[p])): p} for p in sorted(files, key=_report_order)
                    if p.startswith("results/conformance/") and p.endswith(".md")],
        "examples": ([{"Overview": "examples/index.md"}] if "examples/index.md" in pages else [])
        + [{(heading_title(t) or p).split(",")[0]: p} for p, t in sorted(pages.items())
           if p.startswith("examples/") and p != "examples/index.md"],
        "benchmarks": [{heading_title(str(files[p])) or Path(p).stem: p}
                       for p in benchmark_pages()],
    }

    def expand(items: list) -> list:
        result = []
        for item in items:
            if isinstance(item, dict) and set(item) == {"generated"}:
                result += sections[item["generated"]]
            elif isinstance(item, dict):
                (title, value), = item.items()
                if isinstance(value, list):
                    value = expand(value)
                    if not value:
                        continue  # an empty generated section: no entry
                result.append({title: value})
            else:
                result.append(item)
        return result

    return expand(config["nav"])


def _report_title(path: str, text: str = "") -> str:
    """A report's title in the navigation: its backend; a page in a subfolder of the reports
    (the low-precision table, the thorough runs) by its own heading."""
    stem = Path(path).stem
    if Path(path).parent.name != "conformance":
        return (heading_title(text) or stem).split(":")[0]
    return "Report: all backends" if stem == "report" else f"Report: {stem}"


def _report_order(path: str) -> tuple:
    import backends

    stem = Path(path).stem
    stems = ["report", *(backends.file_stem(b) for b in backends.IDS)]
    return (stems.index(stem) if stem in stems else len(stems), stem)


class _Loader(__import__("yaml").SafeLoader):
    """YAML that tolerates MkDocs' `!!python/name:` and `!ENV` tags (only nav is read)."""


_Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)
_Loader.add_constructor("!ENV", lambda loader, node: None)
_Loader.add_constructor("!relative", lambda loader, node: None)


def katex_dist() -> Path:
    """KaTeX's `dist` folder: $KATEX_DIST, else installed from the npm registry (once)."""
    env = os.environ.get("KATEX_DIST")
    if env:
        dist = Path(env)
        if not (dist / "katex.min.js").is_file():
            raise BuildError(f"KATEX_DIST={env} has no katex.min.js: point it at KaTeX's dist/")
        return dist
    dist = NPM_PREFIX / "node_modules" / "katex" / "dist"
    if (dist / "katex.min.js").is_file() and (dist / "katex.min.css").is_file():
        return dist
    npm = shutil.which("npm")
    if npm is None:
        raise BuildError("the docs need KaTeX from the npm registry, but npm is not installed: "
                         "install Node.js and npm (Debian: apt-get install npm), or set "
                         "KATEX_DIST to a KaTeX dist/ folder")
    NPM_PREFIX.mkdir(parents=True, exist_ok=True)
    command = [npm, "install", "--no-save", "--no-audit", "--no-fund", "--loglevel=error",
               "--prefix", str(NPM_PREFIX), KATEX_PACKAGE]
    print("docs: " + " ".join(command[1:]), file=sys.stderr)
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0 or not (dist / "katex.min.js").is_file():
        raise BuildError(f"npm could not install {KATEX_PACKAGE} (exit {result.returncode}):\n"
                         f"{result.stderr.strip()}")
    return dist


def katex_files(dist: Path) -> dict[str, bytes]:
    files = {f"{KATEX_ASSETS}/{name}": (dist / name).read_bytes()
             for name in ("katex.min.js", "katex.min.css")}
    for font in sorted((dist / "fonts").glob("*")):
        files[f"{KATEX_ASSETS}/fonts/{font.name}"] = font.read_bytes()
    package = dist.parent / "package.json"
    if package.is_file():
        files[f"{KATEX_ASSETS}/package.json"] = package.read_bytes()
    return files


def source_files() -> dict[str, bytes]:
    return {p.relative_to(SRC).as_posix(): p.read_bytes()
            for p in sorted(SRC.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


def sync(files: dict[str, bytes | str], folder: Path) -> int:
    """Make `folder` hold exactly `files`, writing only what changed. Returns files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for rel, content in files.items():
        data = content.encode() if isinstance(content, str) else content
        path = folder / rel
        if path.is_file() and path.read_bytes() == data:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written += 1
    wanted = {folder / rel for rel in files}
    for path in sorted(folder.rglob("*"), reverse=True):
        if path.is_file() and path not in wanted:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    return written


def generate(*, with_katex: bool = True) -> tuple[dict[str, bytes | str], list]:
    """Write docs/_generated/ (pages, docs/src/, results, KaTeX); return its files and the nav."""
    pages = generate_pages()
    files: dict[str, bytes | str] = {}
    files.update(results_files())
    files.update(source_files())
    clash = set(pages) & set(files)
    if clash:
        raise BuildError(f"docs/src/ has pages the generator writes: {sorted(clash)}")
    files.update(pages)
    if with_katex:
        files.update(katex_files(katex_dist()))
    sync(files, GENERATED)
    return files, nav(pages, files)


def build(*, strict: bool = False, site_dir: Path | None = None) -> Path:
    """Generate the pages and build the site; returns the site folder."""
    from mkdocs.commands.build import build as mkdocs_build
    from mkdocs.config import load_config

    _log_to_stderr()
    _, site_nav = generate()
    site = Path(site_dir) if site_dir else SITE
    config = load_config(str(CONFIG), strict=strict, nav=site_nav, site_dir=str(site))
    mkdocs_build(config)
    return site


def _log_to_stderr(level: int = logging.WARNING) -> None:
    """MkDocs' warnings (what --strict fails on) on stderr, as its own command line shows them."""
    logger = logging.getLogger("mkdocs")
    if not any(getattr(h, "_docs_build", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("mkdocs %(levelname)s: %(message)s"))
        handler.setLevel(level)
        handler._docs_build = True
        logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > level:
        logger.setLevel(level)


def serve(address: str) -> None:
    from mkdocs.commands.serve import serve as mkdocs_serve

    _log_to_stderr(logging.INFO)
    _, site_nav = generate()
    mkdocs_serve(str(CONFIG), nav=site_nav, dev_addr=address,
                 watch=[str(SRC), str(ROOT / "spec"), str(RESULTS), str(EXAMPLES)],
                 hooks=[str(Path(__file__).resolve())])


def on_pre_build(config) -> None:  # MkDocs hook, in --serve only: regenerate in a fresh process
    if os.environ.get("_DOCS_BUILD_NESTED"):
        return
    # no .pyc written under the watched spec/: that would trigger the next rebuild, forever
    env = dict(os.environ, _DOCS_BUILD_NESTED="1", PYTHONDONTWRITEBYTECODE="1")
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "--generate-only"],
                   check=False, env=env)


# ----------------------------------------------------------------------------- the browser
def chromium() -> str | None:
    """The headless browser the docs are checked with (Debian's `chromium`), if installed."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def chromium_command(browser: str, profile: Path, *args: str) -> list[str]:
    """Headless Chromium that can reach nothing but localhost."""
    return [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-quic", "--disable-dev-shm-usage", "--hide-scrollbars",
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            f"--user-data-dir={profile}", *args]


class LocalServer:
    """The built site over HTTP on 127.0.0.1 (a free port), in a thread; records each path."""

    def __init__(self, folder: Path) -> None:
        import functools
        import http.server
        import threading

        requests: list[str] = []

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args) -> None:
                requests.append(self.path)

        self.requests = requests
        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> LocalServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def screenshot(site: Path, out: Path = SCREENSHOT, page: str = SCREENSHOT_PAGE) -> Path:
    """A PNG of one equation page as Chromium renders it (1280×1600)."""
    import tempfile

    browser = chromium()
    if browser is None:
        raise BuildError("no Chromium to take the screenshot with (Debian: apt-get install "
                         "chromium)")
    out.parent.mkdir(parents=True, exist_ok=True)
    with LocalServer(site) as server, tempfile.TemporaryDirectory() as profile:
        subprocess.run(chromium_command(browser, Path(profile), "--window-size=1280,1600",
                                        "--virtual-time-budget=10000",
                                        f"--screenshot={out.resolve()}", server.url + page),
                       check=True, capture_output=True, timeout=120)
    return out


# ----------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--strict", action="store_true",
                      help="fail on any warning: broken links, missing pages (CI)")
    mode.add_argument("--serve", action="store_true", help="live preview (mkdocs serve)")
    mode.add_argument("--generate-only", action="store_true",
                      help="write docs/_generated/ without KaTeX or MkDocs")
    parser.add_argument("--dev-addr", default="127.0.0.1:8000", help="address for --serve")
    parser.add_argument("--site-dir", type=Path, default=None, help=f"default {SITE}")
    parser.add_argument("--screenshot", action="store_true",
                        help=f"after building, refresh the screenshots in "
                        f"{SCREENSHOT.parent.relative_to(ROOT)} ({', '.join(SCREENSHOTS)})")
    args = parser.parse_args(argv)
    start = _dt.datetime.now()
    try:
        if args.generate_only:
            pages = generate_pages()
            sync({**results_files(), **source_files(), **pages,
                  **_existing(GENERATED, KATEX_ASSETS)}, GENERATED)
            print(f"docs: {len(pages)} pages generated in {GENERATED.relative_to(ROOT)}")
            return 0
        if args.serve:
            serve(args.dev_addr)
            return 0
        site = build(strict=args.strict, site_dir=args.site_dir)
        if args.screenshot:
            for name, page in SCREENSHOTS.items():
                if (site / page).is_file():
                    shot = screenshot(site, SCREENSHOT.parent / name, page)
                    print(f"docs: screenshot {shot.relative_to(ROOT)} of {page}")
                else:
                    print(f"docs: no screenshot of {page}: the site has no such page")
    except BuildError as exc:
        print(f"docs: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # MkDocs' Abort in strict mode, among others
        if type(exc).__name__ == "Abort":
            print(f"docs: {exc}", file=sys.stderr)
            return 1
        raise
    seconds = (_dt.datetime.now() - start).total_seconds()
    print(f"docs: site built in {seconds:.1f} s: {site}")
    return 0


def _existing(folder: Path, under: str) -> dict[str, bytes]:
    """Files already under folder/under (kept by --generate-only, which installs nothing)."""
    base = folder / under
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(base.rglob("*")) if p.is_file()} if base.is_dir() else {}


if __name__ == "__main__":
    sys.exit(main())
