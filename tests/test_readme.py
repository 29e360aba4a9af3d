"""The README's submission table is the schema table (one source of truth)."""

import re
from pathlib import Path

from coverage.schema import schema_markdown

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_schema_table_matches_the_schema():
    text = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- schema table:.*?-->\n(.*?)\n<!-- end of schema table -->", text, re.S)
    assert block is not None, "README lost its schema-table markers"
    assert block.group(1).strip() == schema_markdown().strip()


def test_readme_first_commands_are_the_make_targets_ci_uses():
    text = README.read_text(encoding="utf-8")
    commands = re.findall(r"^make (\w+)", text, re.M)
    assert commands[:2] == ["sample", "test"]
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci
