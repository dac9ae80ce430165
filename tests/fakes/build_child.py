"""An index rebuild as a process of its own that stops at a chosen step, to be killed there.

``python -m tests.fakes.build_child KIND STEP MARKER`` reads its settings from the
environment as the CLI does and rebuilds the home's index as KIND; at STEP it creates the
file MARKER and sleeps until it is killed (a test sends SIGKILL once the marker exists).
Steps, in the order a build reaches them:

- ``reading``: the build (``indexer.doctor.rebuild_index``, what `thumbsearch index
  build` calls, under the writer lock) asks for its first batch of the corpus;
- ``written``: the new snapshot is written beside the old one and verified, the
  metadata still names the old one;
- ``committed``: the metadata names the new snapshot as pending, not yet renamed;
- ``promoted``: the new snapshot has the snapshot's name, the metadata still says pending.

Without a kill it sleeps for ever: it exits 0 only if the step is never reached.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from indexer.doctor import rebuild_index
from indexer.models import model_spec
from indexer.service import build_service
from indexer.settings import Settings
from indexer.store.db import make_engine
from indexer.store.metadata import Store
from indexer.vectors.index import VectorIndex
from indexer.vectors.types import BuildReport, VectorSource

__all__ = ["STEPS", "main"]

STEPS = ("reading", "written", "committed", "promoted")


def _stop(marker: Path) -> None:
    marker.write_text("stopped")
    while True:  # until the SIGKILL
        time.sleep(1)


class _PausingStore(Store):
    marker: Path
    step: str

    def iter_vectors(self, model: str, after: int = 0,
                     batch: int = 10_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if self.step == "reading" and after == 0:
            _stop(self.marker)
        yield from super().iter_vectors(model, after, batch)


class _PausingIndex(VectorIndex):
    marker: Path
    step: str

    def _verify(self, report: BuildReport, source: VectorSource) -> int:
        highest = super()._verify(report, source)
        if self.step == "written":
            _stop(self.marker)
        return highest

    def _promote(self) -> None:
        if self.step == "committed":
            _stop(self.marker)
        super()._promote()
        if self.step == "promoted":
            _stop(self.marker)


def main(argv: Sequence[str]) -> int:
    """Rebuild the index, stopping at the step asked for."""
    kind, step, marker = argv
    if step not in STEPS:
        raise SystemExit(f"unknown step {step!r}: one of {', '.join(STEPS)}")
    settings = Settings.from_env()
    store = _PausingStore(make_engine(settings.database_url))
    store.marker, store.step = Path(marker), step
    if step == "reading":
        service = dataclasses.replace(build_service(settings), _store_factory=lambda: store)
        rebuild_index(service, kind=kind)
        return 0
    spec = model_spec(settings.model)
    _PausingIndex.marker, _PausingIndex.step = Path(marker), step
    index = _PausingIndex.open(settings.index_dir, spec.model_id, spec.dim, store)
    index.rebuild(store, kind)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
