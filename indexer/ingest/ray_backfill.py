"""``add-ids`` on a Ray cluster: downloads and decoding as Ray tasks, embedding in an actor pool."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from indexer.errors import (
    ClusterError,
    InputError,
    ModelError,
    ThumbnailMissingError,
    ThumbsearchError,
    one_line,
)
from indexer.images.decode import decode_image
from indexer.ingest.cluster import LOCAL, check_address
from indexer.ingest.idlist import IdListSummary, add_video_ids
from indexer.ingest.pipeline import ITEM_ERRORS, Finished, PipelineResult, WorkItem
from indexer.ingest.run import IngestRun
from indexer.ingest.source import Group, Stages
from indexer.progress import Progress
from indexer.quiet import muted_stderr
from indexer.records import Failure
from indexer.service import Service, image_fetcher, settings_embedder
from indexer.settings import Settings

if TYPE_CHECKING:
    from indexer.models import Embedder

__all__ = [
    "RayOptions",
    "RayStage",
    "SettingsModel",
    "add_video_ids_ray",
    "embed_batch",
    "fetch_batch",
    "import_ray",
]

OK, MISSING, FAILED = "ok", "missing", "failed"
# A row's status "error:<class>" carries an error that stops the run (its message in
# "reason"): Ray would hand it to the driver as text only, without its class.
ERROR = "error:"
FETCH_CPUS = 0.5  # a download task mostly waits on the network


@dataclass(frozen=True)
class RayOptions:
    """Where to run: ``address`` None or LOCAL starts a local Ray; ``workers`` embedding actors."""

    address: str | None = None
    workers: int | None = None  # None: half the cluster's CPUs, at least one

    @property
    def local(self) -> bool:
        """True when the run starts its own Ray on this machine."""
        return self.address in (None, LOCAL)


@dataclass(frozen=True)
class SettingsModel:
    """Builds the model ``settings`` name; called once in each embedding actor."""

    settings: Settings

    def __call__(self) -> Embedder:
        """The embedder (TensorFlow or LiteRT loads here, in the actor's process)."""
        return settings_embedder(self.settings, bulk=True)


def import_ray() -> Any:
    """The ``ray`` module with Ray Data loaded; ClusterError when Ray is not installed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Ray's import-time deprecation notices are its own
            import ray
            import ray.data
    except ImportError as exc:
        raise ClusterError("Ray is not installed: pip install 'thumbsearch[ray]' "
                           "(or pip install 'ray[data]')") from exc
    return ray


# -- on the cluster: tasks and actors -------------------------------------------------


def _fetch_one(fetch: Callable[[str], bytes], url: str,
               input_size: tuple[int, int]) -> dict[str, Any]:
    start = time.perf_counter()
    row: dict[str, Any] = {"status": OK, "reason": "", "data": b"", "pixels": b"",
                           "height": 0, "width": 0}
    try:
        data = fetch(url)
        image = decode_image(data, url, reduce_to=input_size)
        row.update(data=data, pixels=image.tobytes(), width=image.size[0],
                   height=image.size[1])
    except ThumbnailMissingError as exc:
        row.update(status=MISSING, reason=str(exc))
    except ITEM_ERRORS as exc:
        row.update(status=FAILED, reason=str(exc))
    except ThumbsearchError as exc:
        row.update(status=f"{ERROR}{type(exc).__name__}", reason=str(exc))
    row["load_s"] = time.perf_counter() - start
    return row


def fetch_batch(batch: dict[str, np.ndarray], settings: Settings,
                input_size: tuple[int, int]) -> dict[str, np.ndarray]:
    """A Ray task: download and decode a batch of thumbnails, several downloads at a time.

    Each row gets its status (ok, missing = 404, failed), the reason, the downloaded
    bytes (for the driver's thumbnail cache) and the decoded RGB pixels with their size.
    """
    fetcher = image_fetcher(settings)
    urls = [str(u) for u in batch["url"]]
    with ThreadPoolExecutor(max_workers=max(1, min(settings.download_workers, len(urls)))) as pool:
        rows = list(pool.map(lambda url: _fetch_one(fetcher.fetch, url, input_size), urls))
    out = {key: np.array([row[key] for row in rows], dtype=object)
           for key in ("status", "reason", "data", "pixels")}
    for key, dtype in (("height", np.int32), ("width", np.int32), ("load_s", np.float64)):
        out[key] = np.array([row[key] for row in rows], dtype=dtype)
    return {"video_id": batch["video_id"], "url": batch["url"], **out}


class _EmbedActor:
    """A Ray actor: loads the model once, then preprocesses and embeds batches."""

    def __init__(self, model: Callable[[], Embedder], model_id: str, dim: int) -> None:
        self.embedder: Embedder | None = None
        # Kept for the batches to report: raised here, it would kill the actor and reach
        # the driver as text inside Ray's own error.
        self.error: ThumbsearchError | None = None
        try:
            self.embedder = model()
            if (self.embedder.model_id, self.embedder.dim) != (model_id, dim):
                raise ModelError(f"the embedding actors built {self.embedder.model_id} "
                                 f"({self.embedder.dim}-d), the store expects {model_id} "
                                 f"({dim}-d)")
        except ThumbsearchError as exc:
            self.error = exc
        self.dim = dim

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The batch with a ``vector`` column (zeros where the row is not ok), no pixels."""
        if self.error is None:
            assert self.embedder is not None
            try:
                return embed_batch(self.embedder, batch)
            except ThumbsearchError as exc:
                self.error = exc
        n = len(batch["video_id"])
        return {"video_id": batch["video_id"], "url": batch["url"],
                "status": np.array([f"{ERROR}{type(self.error).__name__}"] * n, dtype=object),
                "reason": np.array([str(self.error)] * n, dtype=object),
                "data": batch["data"], "vector": np.zeros((n, self.dim), dtype=np.float32),
                "load_s": batch["load_s"], "embed_s": np.zeros(n, dtype=np.float64)}


def embed_batch(embedder: Embedder, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Preprocess the ok rows of a fetched batch and embed them; see ``_EmbedActor``."""
    from PIL import Image

    from indexer.vectors.index import l2_normalise

    status = np.array(batch["status"], dtype=object)
    reason = np.array(batch["reason"], dtype=object)
    arrays, rows = [], []
    for i in np.flatnonzero(status == OK):
        size = (int(batch["width"][i]), int(batch["height"][i]))
        try:
            arrays.append(embedder.preprocess(Image.frombytes("RGB", size, batch["pixels"][i])))
            rows.append(int(i))
        except ITEM_ERRORS as exc:
            status[i], reason[i] = FAILED, str(exc)
    vectors = np.zeros((len(status), embedder.dim), dtype=np.float32)
    embed_s = np.zeros(len(status), dtype=np.float64)
    if rows:
        start = time.perf_counter()
        vectors[rows] = l2_normalise(embedder.embed(np.stack(arrays)))
        embed_s[rows] = (time.perf_counter() - start) / len(rows)
    return {"video_id": batch["video_id"], "url": batch["url"], "status": status,
            "reason": reason, "data": batch["data"], "vector": vectors,
            "load_s": batch["load_s"], "embed_s": embed_s}


# -- on the driver ---------------------------------------------------------------------


def _quiet_ray() -> None:
    """Keep Ray's own logging off the terminal (its log files keep it): the run reports
    through Progress, and an error that stops it is raised as one ThumbsearchError."""
    for name in ("ray", "ray.data"):
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, logging.StreamHandler) and not isinstance(
                    handler, logging.FileHandler):
                handler.setLevel(logging.CRITICAL)


def _reported(status: str, reason: str) -> ThumbsearchError:
    """The error a task or actor reported in a row (status ``error:<class>``)."""
    from indexer import errors

    found = getattr(errors, status.removeprefix(ERROR), None)
    if isinstance(found, type) and issubclass(found, ThumbsearchError):
        return found(reason)
    return ClusterError(reason)


@contextlib.contextmanager
def _connected(options: RayOptions) -> Iterator[int]:
    """Ray, started here or connected to; yields the number of embedding actors to run."""
    ray = import_ray()
    _quiet_ray()
    owned = not ray.is_initialized()
    if owned:
        kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.ERROR,
                                  "log_to_driver": False}
        if options.local:
            cpus = os.cpu_count() or 1
            # Actors take a CPU each; one more leaves room for the download tasks.
            kwargs["num_cpus"] = max(cpus, (options.workers or 1) + 1)
        try:
            # Ray's C++ core logs each failed attempt to join a cluster on fd 2; what
            # failed is raised below as one line.
            with warnings.catch_warnings(), muted_stderr():
                warnings.simplefilter("ignore")
                ray.init(address=LOCAL if options.local else options.address, **kwargs)
        except ConnectionError as exc:
            if options.address == "auto":
                raise ClusterError("no Ray cluster runs on this machine: start one with "
                                   "`ray start --head`, or give its HOST:PORT") from exc
            raise ClusterError(f"cannot connect to the Ray cluster at {options.address}: "
                               f"{one_line(exc)}") from exc
        except Exception as exc:  # RuntimeError, ValueError ...: one line
            where = ("start a local Ray" if options.local
                     else f"connect to the Ray cluster at {options.address}")
            raise ClusterError(f"cannot {where}: {one_line(exc)}") from exc
    try:
        with warnings.catch_warnings():
            # Ray warns of its own deprecated settings, which it sets itself.
            for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
                warnings.simplefilter("ignore", category)
            _quiet_ray()
            context = ray.data.DataContext.get_current()
            context.enable_progress_bars = False
            resources: dict[str, float] = ray.cluster_resources()
            cpus = int(resources.get("CPU", 1))
            yield options.workers or max(1, cpus // 2)
    finally:
        if owned:
            ray.shutdown()


class RayStage:
    """A ThumbnailStage on Ray: each written batch counts its videos (see the class docstring).

    The stages are those of the single-process run (``indexer.ingest.idlist``), as a Ray
    Data pipeline::

        ids not stored yet -> fetch + decode (tasks, half a CPU each; downloads in threads)
            -> preprocess + embed (a pool of actors, each loading the model once)
            -> the driver: thumbnail cache, database rows, then the FAISS index, a batch at a time

    Only the driver writes: it holds the writer lock, the database and the index; tasks
    and actors read nothing of the store and write nothing. Choosing and claiming the ids,
    recording 404s as gone, counting failures and the videos.list details are the
    single-process code's (the id-list source and ``indexer.ingest.loop``). Without an
    address a local Ray is started for the run and stopped after it; with one, the run
    connects to that cluster, whose nodes need thumbsearch installed (the same version)
    and must reach the thumbnail host.

    Ray is an optional dependency (``pip install 'thumbsearch[ray]'``), imported only
    when a run starts, so nothing else in thumbsearch loads it.
    """

    def __init__(self, options: RayOptions, settings: Settings,
                 model: Callable[[], Embedder] | None = None) -> None:
        """``model`` builds the embedder in each actor (default: the model ``settings`` name)."""
        self.options = options
        # Workers get no secret: they never call the API nor open the database.
        self.settings = dataclasses.replace(settings, youtube_api_key=None, database_url="")
        self.model = model or SettingsModel(self.settings)
        self.workers: int | None = None  # embedding actors of the last run
        # Seconds of the last run: starting or joining Ray ("start"), the pipeline from its
        # start to its last batch written ("pipeline"), leaving Ray ("stop").
        self.seconds: dict[str, float] = {}

    def stages(self, run: IngestRun) -> Stages[Group[int]]:
        """The stages of one run: the groups are all taken before the Ray pipeline starts."""
        return _RayRun(self, run)

    def batches(self, run: IngestRun, items: list[WorkItem]
                ) -> Iterator[Finished[Group[int]]]:
        """Run the Ray pipeline over ``items``; write each batch it yields, then hand it back
        (as a group of its items)."""
        metas = {item.meta.video_id: item for item in items}
        clock = time.perf_counter()
        with _connected(self.options) as workers:
            self.workers = workers
            self.seconds["start"] = time.perf_counter() - clock
            clock = time.perf_counter()
            batches = iter(self._dataset(run, items, workers).iter_batches(
                batch_size=max(1, self.settings.batch_size), batch_format="numpy"))
            while True:
                try:
                    batch = next(batches)
                except StopIteration:
                    break
                except Exception as exc:  # Ray's own failures, or a bug in a task or actor
                    raise ClusterError(f"the Ray pipeline failed: {one_line(exc)}") from exc
                yield self._write(run, metas, batch)
            self.seconds["pipeline"] = time.perf_counter() - clock
            clock = time.perf_counter()
        self.seconds["stop"] = time.perf_counter() - clock

    def _dataset(self, run: IngestRun, items: list[WorkItem], workers: int) -> Any:
        ray = import_ray()

        spec = run.service.spec
        batch = max(1, self.settings.batch_size)
        rows = [{"video_id": item.meta.video_id, "url": item.url} for item in items]
        # Typed as Any: Ray's stubs take a one-argument function, not one with fn_kwargs.
        dataset: Any = ray.data.from_items(rows, override_num_blocks=-(-len(rows) // batch))
        dataset = dataset.map_batches(
            fetch_batch, batch_size=batch, num_cpus=FETCH_CPUS, batch_format="numpy",
            fn_kwargs={"settings": self.settings, "input_size": spec.input_size})
        return dataset.map_batches(
            _EmbedActor, batch_size=batch, num_cpus=1, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=workers), max_restarts=0,
            fn_constructor_kwargs={"model": self.model, "model_id": spec.model_id,
                                   "dim": spec.dim})

    @staticmethod
    def _write(run: IngestRun, items: dict[str, WorkItem],
               batch: dict[str, np.ndarray]) -> Finished[Group[int]]:
        cache = run.service.cache
        result = PipelineResult()
        stored, vectors, done = [], [], []
        for i, video_id in enumerate(str(v) for v in batch["video_id"]):
            status, reason = str(batch["status"][i]), str(batch["reason"][i])
            if status.startswith(ERROR):
                raise _reported(status, reason)
            done.append(items[video_id])
            if status == OK:
                stored.append(dataclasses.replace(
                    items[video_id].meta, thumbnail_sha256=cache.put(bytes(batch["data"][i]))))
                vectors.append(batch["vector"][i])
                continue
            result.failed.append(Failure(video_id, reason))
            if status == MISSING:
                result.missing[video_id] = reason
        start = time.perf_counter()
        if stored:
            run.write(stored, np.asarray(vectors, dtype=np.float32))
        result.stored = [m.video_id for m in stored]
        times = run.summary.times
        times.write += time.perf_counter() - start
        times.load += float(np.sum(batch["load_s"]))
        times.embed += float(np.sum(batch["embed_s"]))
        return Finished(Group(done, len(done)), result)


class _RayRun:
    """A RayStage's stages for one run: groups are kept until ``drain`` runs them on Ray."""

    def __init__(self, stage: RayStage, run: IngestRun) -> None:
        self.stage = stage
        self.run = run
        self.items: list[WorkItem] = []

    def submit(self, items: Sequence[WorkItem],
               tag: Group[int]) -> list[Finished[Group[int]]]:
        """Keep ``items`` for the next Ray run; an empty group is through at once."""
        self.items.extend(items)
        return [] if items else [Finished(tag, PipelineResult())]

    def drain(self) -> Iterator[Finished[Group[int]]]:
        """One Ray run over the items kept; each batch, once written, is a finished group."""
        items, self.items = self.items, []
        if items:
            yield from self.stage.batches(run=self.run, items=items)


def add_video_ids_ray(service: Service, video_ids: Sequence[str], options: RayOptions, *,
                      details: bool = True, wait: float = 0.0,
                      progress: Progress | None = None, label: str = "video ids",
                      model: Callable[[], Embedder] | None = None) -> IdListSummary:
    """``add_video_ids`` with the thumbnails on Ray; stores what the single-process run stores.

    Ray missing, or a cluster that cannot be joined, fail here before anything is written.
    ``model`` builds the embedder in each actor (a picklable callable; default: the
    model the service's settings name).
    """
    import_ray()
    if not options.local:
        check_address(str(options.address))
    if options.workers is not None and options.workers < 1:
        raise InputError(f"the number of Ray embedding workers must be at least 1, "
                         f"got {options.workers}")
    stage = RayStage(options, service.settings, model)
    # A cluster is joined before the run, so that one that cannot be joined stops it before
    # anything is written; a local Ray is started only once there is something to embed.
    with contextlib.nullcontext() if options.local else _connected(options):
        return add_video_ids(service, video_ids, details=details, wait=wait,
                             progress=progress, label=label, stage=stage)
