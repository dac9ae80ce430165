"""The ingest loop: a source's groups are claimed, stored and handed back to it, one way."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Generic, TypeVar

from indexer.errors import QuotaExceededError
from indexer.ingest.claims import Claims, video_key
from indexer.ingest.details import Details
from indexer.ingest.pipeline import Finished, WorkItem
from indexer.ingest.source import Group, Source, Stages, Wait
from indexer.ingest.summary import IngestSummary

__all__ = ["Loop"]

N = TypeVar("N")


class Loop(Generic[N]):
    """Drives one source through ``stages``; ``run`` returns the quota stop that ends it.

    ``summary`` counts what was stored and what failed; ``claims`` (with the model id
    the keys name) is needed by a source that claims; ``details`` gets the stored ids
    each group's accounting returns.

    Source -> (claims) -> stages -> finished groups -> the source's accounting -> details.
    Items another worker holds are left to it; once the source's own groups are stored the
    loop waits for them: finished there (the source counts them), or given up or expired
    (the worker was killed) and taken over here. See ``docs/sources.md``.
    """

    def __init__(self, source: Source[N], stages: Stages[Group[N]], *,
                 summary: IngestSummary | None = None, claims: Claims | None = None,
                 model: str = "", details: Details | None = None) -> None:
        self.source = source
        self.stages = stages
        self.summary = summary
        self.claims = claims
        self.model = model
        self.details = details
        self.held: list[tuple[Group[N], WorkItem]] = []  # items another worker holds

    def run(self) -> QuotaExceededError | None:
        """``store``, then ``finish``."""
        return self.finish(self.store())

    def store(self) -> QuotaExceededError | None:
        """Read and store every group and wait for the held items; return the quota stop
        of the source's reading, if any."""
        stop = self._read()
        self._drain()  # what was read before a stop is stored and accounted
        self._wait_for_held()
        self._drain()  # and what was taken over
        return stop

    def finish(self, stop: QuotaExceededError | None) -> QuotaExceededError | None:
        """Ask the details still waiting; return the quota stop that ends the run, if any
        (the details' own, else ``stop``)."""
        if self.details is None:
            return stop
        if self.details.stop is None:
            self.details.finish()
        return self.details.stop or stop

    def _read(self) -> QuotaExceededError | None:
        """Take the source's groups until it ends, or a quota stop ends the run."""
        try:
            for group in self.source.groups():
                if isinstance(group, Wait):
                    self._drain()
                    continue
                self._submit(group)
                if self.details is not None and self.details.ends_run and (
                        self.details.stop is not None):
                    break
        except QuotaExceededError as exc:  # the source's reading (search) stopped
            return exc
        return None

    def _submit(self, group: Group[N]) -> list[WorkItem]:
        """Claim ``group``'s items, submit those still to do; return the items another
        worker holds."""
        held: list[WorkItem] = []
        if self.source.claims and self.claims is not None:
            keys = {item.meta.video_id: self._key(item) for item in group.items}
            got = self.claims.claim(keys.values())
            mine = [item for item in group.items if keys[item.meta.video_id] in got]
            held = [item for item in group.items if keys[item.meta.video_id] not in got]
            done = self.source.settle(group, [item.meta.video_id for item in mine])
            self.claims.release(keys[v] for v in done)
            group.items = [item for item in mine if item.meta.video_id not in done]
            group.held = len(held)
        if not group.handover:
            self.held.extend((group, item) for item in held)
        self._account(self.stages.submit(group.items, group))
        return held

    def _key(self, item: WorkItem) -> str:
        return video_key(self.model, item.meta.video_id)

    def _account(self, finished: Iterable[Finished[Group[N]]]) -> bool:
        """Hand each finished group back to the source; True when there was one."""
        any_finished = False
        for done in finished:
            any_finished = True
            group, result = done.tag, done.result
            if self.summary is not None:
                self.summary.new += len(result.stored)
                self.summary.failed.extend(result.failed)
            if self.source.claims and self.claims is not None:
                self.claims.release(self._key(item) for item in group.items)
            enrich = self.source.stored(group, result)
            if self.details is not None and self.details.stop is None:
                self.details.add(enrich)
        return any_finished

    def _drain(self) -> None:
        # Until nothing is left: a stage error is raised once finished groups are handed back.
        while self._account(self.stages.drain()):
            pass

    def _wait_for_held(self) -> None:
        """Wait for the items other workers held: finished there (the source counts them),
        or let go or expired (taken over here, a group per group they came from)."""
        waiting, self.held = self.held, []
        while waiting and self.claims is not None:
            self._drain()
            waiting = self._unsettled(waiting)
            if not waiting:
                return
            expired = self.claims.others([self._key(item) for _, item in waiting])
            free = [(g, item) for g, item in waiting if expired.get(self._key(item), True)]
            if not free:
                time.sleep(self.claims.poll_interval)
                continue
            taken: dict[int, Group[N]] = {}
            for group, item in free:
                taken.setdefault(id(group), Group([], group.note, handover=True)).items.append(
                    item)
            still: set[int] = set()
            for group in taken.values():
                still.update(id(item) for item in self._submit(group))
            answered = {id(item) for _, item in free} - still
            waiting = [(g, item) for g, item in waiting if id(item) not in answered]

    def _unsettled(self, waiting: list[tuple[Group[N], WorkItem]]
                   ) -> list[tuple[Group[N], WorkItem]]:
        """The waiting items not finished elsewhere yet (those that are, the source counts)."""
        by_group: dict[int, tuple[Group[N], list[WorkItem]]] = {}
        for group, item in waiting:
            by_group.setdefault(id(group), (group, []))[1].append(item)
        done: set[str] = set()
        for group, items in by_group.values():
            done |= self.source.settle(group, [item.meta.video_id for item in items])
        return [(g, item) for g, item in waiting if item.meta.video_id not in done]
