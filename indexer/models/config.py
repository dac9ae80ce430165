"""Model ids with options:
``<base>[+unbar][+inset][+squash|crop|pad][+rmac][+avg|max|gem][+flip][+int8]``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from indexer.bounds import quote
from indexer.errors import UnknownModelError
from indexer.models.preprocess import RESIZE_MODES, Preprocessing

__all__ = [
    "BASE_POOLING",
    "FLIP",
    "INT8",
    "POOLINGS",
    "REGION_POOLINGS",
    "RMAC",
    "ModelConfig",
    "parse_model_id",
]

#: Global pooling of the last feature map: average, max, or generalised mean (GeM, p=3).
POOLINGS = ("avg", "max", "gem")

#: How ``+rmac`` pools each region: max (R-MAC as published, the default) or GeM.
REGION_POOLINGS = ("max", "gem")

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

#: Regional pooling (R-MAC, Tolias et al. 2016): regions at 3 scales of the last feature map,
#: each max- (or with ``+gem`` GeM-) pooled and L2-normalised, summed.
RMAC = "rmac"

#: Flip-invariant embedding: the mean of the image's and its mirror image's unit vectors.
FLIP = "flip"

#: The option running the model int8-quantised on LiteRT. Its vectors are not those of fp32
#: (cosine about 0.97 at worst on the sample photos), so it is part of the model id: an index
#: never mixes the two, and switching needs ``thumbsearch reembed``.
INT8 = "int8"

_OPTIONS_HELP = (f"+{_UNBAR}, +{_INSET}, one of +{'|'.join(RESIZE_MODES)}, +{RMAC}, "
                 f"one of +{'|'.join(POOLINGS)} (+{'|'.join(REGION_POOLINGS)} with +{RMAC}), "
                 f"+{FLIP}, +{INT8}")


@dataclass(frozen=True)
class ModelConfig:
    """A base model plus the preprocessing and pooling its vectors were made with."""

    base: str
    unbar: bool = False
    resize: str = "squash"
    pooling: str = ""  # "" = the base model's own (with rmac: max)
    int8: bool = False  # post-training int8 quantisation, run on LiteRT
    rmac: bool = False  # regional pooling (R-MAC) instead of one global pooling
    flip: bool = False  # the mean of the image's and its mirror's unit vectors
    inset: bool = False  # a picture on a smooth surround is cut out before embedding

    @property
    def pooling_used(self) -> str:
        """The pooling actually applied (to each region with ``rmac``)."""
        if self.rmac:
            return self.pooling or REGION_POOLINGS[0]
        return self.pooling or BASE_POOLING[self.base]

    @property
    def preprocessing(self) -> Preprocessing:
        """The image-side part of the configuration."""
        return Preprocessing(unbar=self.unbar, resize=self.resize, inset=self.inset)

    @property
    def fp32(self) -> ModelConfig:
        """The same configuration without int8 quantisation."""
        return dataclasses.replace(self, int8=False)

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
        if self.rmac:
            parts.append(RMAC)
            if self.pooling_used != REGION_POOLINGS[0]:
                parts.append(self.pooling_used)
        elif self.pooling_used != BASE_POOLING[self.base]:
            parts.append(self.pooling_used)
        if self.flip:
            parts.append(FLIP)
        if self.int8:
            parts.append(INT8)
        return "+".join(parts)

    @property
    def is_base(self) -> bool:
        """True when the id is the plain base model."""
        return self.model_id == self.base


def parse_model_id(text: str) -> ModelConfig:
    """Parse ``base+option+...``; UnknownModelError names the known bases and options.

    ``+int8`` (last in the canonical id) quantises the model to int8 for LiteRT. ``+rmac``
    pools regions (max, or GeM with ``+gem``); ``+flip`` embeds the image with its mirror.

    Vectors made with different preprocessing must never share an index, so every
    configuration has its own id. Options equal to the base model's defaults are dropped
    from the canonical id: ``efficientnet-lite0+squash+avg`` is ``efficientnet-lite0``, and a
    base id always means what it meant before options existed.
    """
    base, *options = text.strip().split("+")
    if base not in BASE_POOLING:
        raise UnknownModelError(
            f"unknown model {quote(base)}; known models: {', '.join(BASE_POOLING)} "
            f"(options: {_OPTIONS_HELP})")
    flags: set[str] = set()
    resize, pooling = "", ""
    for option in options:
        if option in (_UNBAR, _INSET, RMAC, FLIP, INT8) and option not in flags:
            flags.add(option)
        elif option in RESIZE_MODES and not resize:
            resize = option
        elif option in POOLINGS and not pooling:
            pooling = option
        else:
            raise UnknownModelError(
                f"model {quote(text)}: option {quote(option)} is unknown or repeated; options "
                f"are {_OPTIONS_HELP}")
    rmac = RMAC in flags
    if rmac and pooling and pooling not in REGION_POOLINGS:
        raise UnknownModelError(
            f"model {quote(text)}: +{RMAC} pools each region by "
            f"{' or '.join(REGION_POOLINGS)}, not {pooling}")
    default = REGION_POOLINGS[0] if rmac else BASE_POOLING[base]
    return ModelConfig(base=base, unbar=_UNBAR in flags, resize=resize or "squash",
                       pooling="" if pooling == default else pooling, int8=INT8 in flags,
                       rmac=rmac, flip=FLIP in flags, inset=_INSET in flags)
