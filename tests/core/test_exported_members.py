"""Each package's ``__all__`` names exactly its public API, and every module keeps its own."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

PACKAGES = ["indexer", "search", "indexer.models"]


@pytest.mark.parametrize("name", PACKAGES)
def test_package_all_lists_existing_public_names(name: str) -> None:
    package = importlib.import_module(name)
    exported = set(package.__all__)
    assert exported == set(sorted(exported))
    for member in exported:
        assert hasattr(package, member), f"{name}.__all__ names missing {member}"
        assert not member.startswith("_")
    # Public classes and functions the package module itself exposes are all exported.
    own = {n for n, v in vars(package).items()
           if not n.startswith("_") and (inspect.isclass(v) or inspect.isfunction(v))
           and getattr(v, "__module__", "").startswith(name.split(".")[0])}
    assert own <= exported, f"{name} exposes {own - exported} without exporting them"


def _modules() -> list[str]:
    names = []
    for top in ("indexer", "search"):
        package = importlib.import_module(top)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{top}."):
            names.append(info.name)
    return names


@pytest.mark.parametrize("module_name", _modules())
def test_every_module_declares_all_of_its_own_public_definitions(module_name: str) -> None:
    if module_name.endswith("__main__"):
        return
    module = importlib.import_module(module_name)
    assert hasattr(module, "__all__"), f"{module_name} has no __all__"
    for member in module.__all__:
        assert hasattr(module, member), f"{module_name}.__all__ names missing {member}"
    defined = {n for n, v in vars(module).items()
               if not n.startswith("_") and (inspect.isclass(v) or inspect.isfunction(v))
               and getattr(v, "__module__", None) == module_name}
    assert defined <= set(module.__all__), (
        f"{module_name} defines {defined - set(module.__all__)} without exporting them")
