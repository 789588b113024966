"""The README's quick start and configuration table say what the project really does."""

import re
from pathlib import Path

from service.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
MAKEFILE = (Path(__file__).resolve().parents[2] / "Makefile").read_text(encoding="utf-8")


def test_quick_start_is_exactly_make_demo_and_make_test():
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#", 1)[0].strip() for line in block.strip().splitlines()]
    assert commands == ["make demo", "make test"]
    for target in ("demo", "test", "run"):
        assert re.search(rf"^{target}:", MAKEFILE, re.MULTILINE), f"Makefile has no {target} target"


def test_configuration_table_lists_every_setting_with_its_default():
    rows = re.findall(r"^\| `(TESS_SERVICE_[A-Z0-9_]+)` \| `([^`]*)` \|", README, re.MULTILINE)
    documented = dict(rows)
    fields = {f"TESS_SERVICE_{name.upper()}": field for name, field in Settings.model_fields.items()}
    assert set(documented) == set(fields)
    for variable, field in fields.items():
        assert documented[variable] == str(field.default), variable
