"""What an ingest source implements (``Source``) and what carries its groups (``Stages``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from indexer.ingest.pipeline import Finished, PipelineResult, WorkItem

__all__ = ["WAIT", "Group", "Source", "Stages", "Wait"]

N = TypeVar("N")
T = TypeVar("T")


@dataclass
class Group(Generic[N]):
    """Items a source read together (a search page, up to 50 listed ids, a folder's files)
    and ``note``, the source's own record of what they are (a page's query and ranks)."""

    items: list[WorkItem]
    note: N
    held: int = 0  # items another worker held when the loop claimed the group (not in items)
    handover: bool = False  # items taken over from other workers, after the source's reading


class Wait:
    """Yielded by a source with nothing to read until other workers let go of its work."""


#: The loop stores what is under way, then asks the source for its next group.
WAIT = Wait()


class Source(Protocol[N]):
    """What to read, what is finished already, and what to do once a group is stored.

    With ``claims`` the loop claims each item (``indexer.ingest.claims.video_key``)
    before it goes to the stages, leaves those another worker holds to it and, once
    the source's groups are stored, waits for them: finished there, or taken over here.

    The loop that drives a source is ``indexer.ingest.loop``; ``docs/sources.md`` tells how.
    """

    claims: bool

    def groups(self) -> Iterator[Group[N] | Wait]:
        """The work, a group at a time; each is claimed and submitted as it is taken."""
        ...

    def settle(self, group: Group[N], ids: list[str]) -> set[str]:
        """Of ``ids`` (items of ``group``), those finished already by an earlier run or
        another worker; they are counted here and not stored again."""
        ...

    def stored(self, group: Group[N], result: PipelineResult) -> list[str]:
        """Account for a group whose items are all stored or failed; return the stored
        ids that want videos.list details."""
        ...


class Stages(Protocol[T]):
    """Carries groups to the store: the run's pipeline in this process, or a Ray cluster."""

    def submit(self, items: Sequence[WorkItem], tag: T) -> Iterable[Finished[T]]:
        """Queue ``items``; return the groups finished meanwhile, in submission order."""
        ...

    def drain(self) -> Iterable[Finished[T]]:
        """Store everything queued; return the groups not returned yet, in order."""
        ...
