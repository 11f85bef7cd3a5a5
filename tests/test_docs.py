"""README is a short guide; the reference lives in docs/. These tests keep both honest:
the quick start is the one CI runs, every link resolves, every setting is documented."""

from __future__ import annotations

import re
from pathlib import Path

from api.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return {_anchor(m) for m in re.findall(r"^#+\s+(.+)$", text, flags=re.M)}


def test_readme_is_a_short_guide() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, f"README has {len(lines)} lines: move reference text to docs/"
    for doc in ("api", "cli", "axes", "photos", "operations", "evidence"):
        assert f"(docs/{doc}.md)" in README.read_text(encoding="utf-8"), doc


def test_quick_start_is_two_commands_and_ci_runs_its_test_command() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S)
    assert block, "README's quick start has no bash block"
    commands = [line.split("#", 1)[0].strip() for line in block.group(1).splitlines()]
    commands = [c for c in commands if c]
    assert commands == ["bash scripts/setup.sh && .venv/bin/tlgan serve",
                        ".venv/bin/python -m pytest"], commands
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.lstrip().startswith("#")]
    assert ci[-1] == commands[1], "CI must end by running README's test command verbatim"
    assert "bash scripts/setup.sh" in ci


def test_every_relative_link_resolves() -> None:
    broken = []
    for page in PAGES:
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+://|mailto:", target):
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_every_image_is_shown_somewhere() -> None:
    text = "".join(p.read_text(encoding="utf-8") for p in PAGES)
    unused = [img.name for img in (DOCS / "img").iterdir() if img.name not in text]
    assert not unused, f"images no page shows: {unused}"


def test_settings_table_lists_every_setting() -> None:
    text = (DOCS / "operations.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `(TLGAN_[A-Z_]+)` \|", text, flags=re.M))
    names = {f"TLGAN_{field.upper()}" for field in Settings.model_fields}
    assert not names - rows, f"settings missing from docs/operations.md: {sorted(names - rows)}"
    assert not rows - names, f"docs/operations.md lists non-settings: {sorted(rows - names)}"
