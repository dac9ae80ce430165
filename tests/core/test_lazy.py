"""Lazy package facades: names imported on first access, listed by dir(), unknown ones refused."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from indexer.lazy import lazy_names


def test_a_name_is_imported_on_first_access_and_kept() -> None:
    namespace: dict[str, Any] = {}
    get, listing = lazy_names("pkg", {"quote": "indexer.bounds"}, namespace, ["quote"])
    from indexer.bounds import quote

    assert "quote" not in namespace
    assert get("quote") is quote
    assert namespace["quote"] is quote  # the next access does not reach __getattr__
    assert listing() == ["quote"]


def test_an_unknown_name_is_an_attribute_error() -> None:
    get, _ = lazy_names("pkg", {}, {}, [])
    with pytest.raises(AttributeError, match="module 'pkg' has no attribute 'missing'"):
        get("missing")


def test_dir_lists_the_public_names_and_what_is_loaded() -> None:
    namespace: dict[str, Any] = {"__doc__": None, "loaded": 1}
    _, listing = lazy_names("pkg", {"b": "x", "a": "y"}, namespace, ["b", "a"])
    assert listing() == ["__doc__", "a", "b", "loaded"]


@pytest.mark.parametrize("package", ["indexer", "search"])
def test_the_packages_import_nothing_heavy_until_asked(package: str) -> None:
    code = (f"import sys, {package}\n"
            "heavy = [m for m in ('numpy', 'sqlalchemy', 'faiss') if m in sys.modules]\n"
            f"assert not heavy, heavy\n"
            f"assert set({package}.__all__) <= set(dir({package}))\n"
            f"getattr({package}, {package}.__all__[0])\n"
            f"assert {package}.__all__[0] in vars({package})\n")
    subprocess.run([sys.executable, "-c", code], check=True)
