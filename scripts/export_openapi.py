"""Write openapi/openapi.json from the app (``make openapi``); a test fails when the file drifts."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.main import create_app  # noqa: E402

TARGET = ROOT / "openapi" / "openapi.json"


def render_openapi() -> str:
    """Return the app's OpenAPI document as stable, pretty JSON."""
    return json.dumps(create_app().openapi(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    TARGET.write_text(render_openapi(), encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}")
