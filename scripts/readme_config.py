"""Rewrite the README's configuration table from `Settings` (tests/unit/test_readme.py checks they agree)."""

import re
from pathlib import Path

from service.settings import Settings

README = Path(__file__).resolve().parents[1] / "README.md"


def table() -> str:
    rows = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        rows.append(f"| `TESS_SERVICE_{name.upper()}` | `{field.default}` | {field.description} |")
    return "\n".join(rows) + "\n"


def main() -> None:
    text = README.read_text(encoding="utf-8")
    pattern = re.compile(r"^\| Variable \| Default \| Meaning \|\n(?:^\|.*\|\n)+", re.MULTILINE)
    assert len(pattern.findall(text)) == 1, "the README must hold exactly one configuration table"
    README.write_text(pattern.sub(lambda _: table(), text), encoding="utf-8")


if __name__ == "__main__":
    main()
