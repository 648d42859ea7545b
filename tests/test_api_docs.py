"""Every example in docs/api.md runs (doctest), from the repository's root."""

import doctest
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("page", ["api.md"])
def test_doc_examples(page, monkeypatch):
    monkeypatch.chdir(ROOT)
    failed, attempted = doctest.testfile(str(ROOT / "docs" / page), module_relative=False,
                                         optionflags=doctest.ELLIPSIS)
    assert attempted >= 10 and failed == 0
    assert os.getcwd() == str(ROOT)
