"""The generated reference pages (docs/spec.md, cli.md, hooks.md) are what scripts/make_docs.py
writes from the code now: a change to the spec schema, a command or a hook that is not
followed by ``make docs`` fails here."""

import importlib.util
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _make_docs():
    spec = importlib.util.spec_from_file_location("make_docs", ROOT / "scripts" / "make_docs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("page", ["spec.md", "cli.md", "hooks.md"])
def test_generated_page_is_current(page):
    fresh = _make_docs().PAGES[page]()
    committed = (ROOT / "docs" / page).read_text(encoding="utf-8")
    assert committed == fresh, f"docs/{page} is stale: run `make docs` and commit the result"


def test_pages_name_every_command_and_section():
    md = _make_docs()
    assert (
        "## bpcli train\n" in md.cli_reference() and "## bpcli onnx check\n" in md.cli_reference()
    )
    assert "## [optimizer]" in md.spec_reference() and "| `adam` |" in md.spec_reference()
    assert "bpcli_register_layers(register" in md.hooks_reference()
