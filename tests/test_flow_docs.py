"""The YAML examples of docs/flows.md and the README validate, so the docs cannot rot.

Each ```yaml block is a complete scenario and must pass `loadbench validate`. A block
after `<!-- file: NAME -->` is written beside the scenarios as NAME (a data file, a Python
flow module) instead. A block after `<!-- invalid: LINE: TEXT -->` must be refused with
exit 2 and one line naming the block's LINE and containing TEXT. A block after
`<!-- fragment: WHY -->` is part of a scenario and is not checked. Validation only: the
examples run against the sample target in tests/test_flows.py-style end-to-end tests.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loadbench.cli import app

ROOT = Path(__file__).resolve().parent.parent
DOCS = ("docs/flows.md", "README.md")
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_MARK = re.compile(r"<!--\s*(file|invalid|fragment):\s*(.*?)\s*-->\s*\n$")


def blocks(doc: str) -> list[tuple[str, str, str, str]]:
    """(language, text, mark kind, mark value) of each fenced block, in order."""
    text = (ROOT / doc).read_text()
    out = []
    for match in _FENCE.finditer(text):
        mark = _MARK.search(text[max(0, match.start() - 200):match.start()])
        out.append((match.group(1), match.group(2), *(mark.groups() if mark else ("", ""))))
    return out


def examples() -> list:
    params = []
    for doc in DOCS:
        for index, (language, _text, kind, _) in enumerate(blocks(doc)):
            if language == "yaml" and kind not in ("file", "fragment"):
                params.append(pytest.param(doc, index, id=f"{doc}#{index}"))
    return params


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """The examples' folder: scenarios/data copied, plus every `file:` block of the docs."""
    path = tmp_path_factory.mktemp("flow_docs")
    shutil.copytree(ROOT / "scenarios/data", path / "data")
    for doc in DOCS:
        for _, text, kind, value in blocks(doc):
            if kind == "file":
                (path / value).parent.mkdir(parents=True, exist_ok=True)
                (path / value).write_text(text)
    saved_path, saved_modules = list(sys.path), set(sys.modules)
    yield path
    sys.path[:] = saved_path  # Python flows are imported from the examples' folder
    for name in set(sys.modules) - saved_modules:
        if getattr(sys.modules[name], "__file__", None) and \
                str(path) in str(sys.modules[name].__file__):
            del sys.modules[name]


@pytest.mark.parametrize(("doc", "index"), examples())
def test_a_documented_example_validates(doc, index, folder):
    _, text, kind, value = blocks(doc)[index]
    scenario = folder / f"example{index}.yaml"
    scenario.write_text(text)
    result = CliRunner().invoke(app, ["validate", str(scenario)], catch_exceptions=False)
    if kind == "invalid":
        line, _, expected = value.partition(": ")
        assert result.exit_code == 2, result.output
        message = result.output.strip()
        assert "\n" not in message, message
        assert message.startswith(f"loadbench: error: {scenario}:{line}: "), message
        assert expected in message, message
    else:
        assert result.exit_code == 0, f"{doc} block {index}:\n{text}\n{result.output}"


def test_the_docs_have_examples_of_every_kind():
    """The extractor finds what it should (a broken fence regex must not pass silently)."""
    found = blocks("docs/flows.md")
    kinds = [(language, kind) for language, _, kind, _ in found]
    assert kinds.count(("yaml", "")) >= 15
    assert kinds.count(("yaml", "invalid")) >= 3
    assert ("python", "file") in kinds and ("json", "file") in kinds
    assert any(language == "yaml" for language, *_ in blocks("README.md"))
