"""docs/api.md's REST API table names only fields that the served OpenAPI document has."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def _names(doc: dict[str, Any], node: Any, seen: set[str]) -> set[str]:
    """Property names and enum values reachable from a schema node ($refs followed)."""
    out: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if name not in seen:
                seen.add(name)
                out |= _names(doc, doc["components"]["schemas"][name], seen)
        out |= set(node.get("properties", {}))
        out |= {str(v) for v in node.get("enum", [])}
        for value in node.values():
            out |= _names(doc, value, seen)
    elif isinstance(node, list):
        for value in node:
            out |= _names(doc, value, seen)
    return out


def test_api_doc_table_field_names_exist_in_openapi(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    rows = [line for line in API_DOC.read_text(encoding="utf-8").splitlines()
            if re.match(r"\| `POST /[\w/]+`", line)]
    documented = {re.match(r"\| `POST (/[\w/]+)`", row).group(1) for row in rows}  # type: ignore[union-attr]
    served = {path for path, ops in doc["paths"].items() if "post" in ops}
    assert documented == served, f"POST routes without a row: {sorted(served - documented)}"
    for row in rows:
        path = re.match(r"\| `POST (/[\w/]+)`", row).group(1)  # type: ignore[union-attr]
        op = doc["paths"][path]["post"]
        known = _names(doc, [op.get("requestBody"), op.get("responses", {}).get("200")], set())
        quoted = set(re.findall(r'"(\w+)"', row))
        assert quoted, row
        missing = sorted(quoted - known)
        assert not missing, f"docs/api.md's {path} row names {missing}, not in the OpenAPI document"
