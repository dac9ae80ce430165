"""Model ids with options:
``<base>[+unbar][+inset][+squash|crop|pad][+avg|max|gem][+int8]``."""

from __future__ import annotations

from dataclasses import dataclass, replace

from indexer.bounds import quote
from indexer.errors import UnknownModelError
from indexer.models.preprocess import RESIZE_MODES, Preprocessing

__all__ = ["BASE_POOLING", "INT8", "POOLINGS", "ModelConfig", "parse_model_id"]

#: Global pooling of the last feature map: average, max, or generalised mean (GeM, p=3).
POOLINGS = ("avg", "max", "gem")

#: The pooling each base model uses when its id names none.
BASE_POOLING: dict[str, str] = {
    "efficientnet-lite0": "avg",
    "efficientnet-lite1": "avg",
    "efficientnet-lite2": "avg",
    "vgg16": "max",
    "resnet50": "avg",
    "efficientnetb0": "avg",
}

_UNBAR = "unbar"
#: The option cutting a picture-in-picture's picture out of its smooth surround.
_INSET = "inset"

#: The option running the model int8-quantised on LiteRT. Its vectors are not those of fp32
#: (cosine about 0.97 at worst on the sample photos), so it is part of the model id: an index
#: never mixes the two, and switching needs ``thumbsearch reembed``.
INT8 = "int8"


@dataclass(frozen=True)
class ModelConfig:
    """A base model plus the preprocessing and pooling its vectors were made with."""

    base: str
    unbar: bool = False
    resize: str = "squash"
    pooling: str = ""  # "" = the base model's own
    int8: bool = False  # post-training int8 quantisation, run on LiteRT
    inset: bool = False  # a picture on a smooth surround is cut out before embedding

    @property
    def pooling_used(self) -> str:
        """The pooling actually applied."""
        return self.pooling or BASE_POOLING[self.base]

    @property
    def preprocessing(self) -> Preprocessing:
        """The image-side part of the configuration."""
        return Preprocessing(unbar=self.unbar, resize=self.resize, inset=self.inset)

    @property
    def fp32(self) -> ModelConfig:
        """The same configuration without int8 quantisation."""
        return replace(self, int8=False)

    @property
    def model_id(self) -> str:
        """The canonical id: the base, then the options that differ from its defaults."""
        parts = [self.base]
        if self.unbar:
            parts.append(_UNBAR)
        if self.inset:
            parts.append(_INSET)
        if self.resize != "squash":
            parts.append(self.resize)
        if self.pooling_used != BASE_POOLING[self.base]:
            parts.append(self.pooling_used)
        if self.int8:
            parts.append(INT8)
        return "+".join(parts)

    @property
    def is_base(self) -> bool:
        """True when the id is the plain base model."""
        return self.model_id == self.base


def parse_model_id(text: str) -> ModelConfig:
    """Parse ``base+option+...``; UnknownModelError names the known bases and options.

    ``+int8`` (last in the canonical id) quantises the model to int8 for LiteRT.

    Vectors made with different preprocessing must never share an index, so every
    configuration has its own id. Options equal to the base model's defaults are dropped
    from the canonical id: ``efficientnet-lite0+squash+avg`` is ``efficientnet-lite0``, and a
    base id always means what it meant before options existed.
    """
    base, *options = text.strip().split("+")
    if base not in BASE_POOLING:
        raise UnknownModelError(
            f"unknown model {quote(base)}; known models: {', '.join(BASE_POOLING)} "
            f"(options: +{_UNBAR}, +{_INSET}, +{'|'.join(RESIZE_MODES)}, "
            f"+{'|'.join(POOLINGS)}, +{INT8})")
    unbar, inset, int8, resize, pooling = False, False, False, "", ""
    for option in options:
        if option == _UNBAR and not unbar:
            unbar = True
        elif option == _INSET and not inset:
            inset = True
        elif option in RESIZE_MODES and not resize:
            resize = option
        elif option in POOLINGS and not pooling:
            pooling = option
        elif option == INT8 and not int8:
            int8 = True
        else:
            raise UnknownModelError(
                f"model {quote(text)}: option {quote(option)} is unknown or repeated; options "
                f"are +{_UNBAR}, +{_INSET}, one of +{'|'.join(RESIZE_MODES)}, "
                f"one of +{'|'.join(POOLINGS)}, +{INT8}")
    pooling = "" if pooling == BASE_POOLING[base] else pooling
    return ModelConfig(base=base, unbar=unbar, resize=resize or "squash", pooling=pooling,
                       int8=int8, inset=inset)
