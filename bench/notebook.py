"""The original notebook's pipeline against ours, end to end, on the same loopback fakes.

Throughput here is videos fully processed per second end to end: from the first
search call, through every thumbnail stored as a vector, to one nearest-neighbour
query answered over them. Model building (and ours converting it for its runtime)
happens before the clock starts, for both.

- notebook: one ``search.list`` page at a time; for each result, one
  ``requests.get`` of its ``medium`` thumbnail, Keras ``model.predict`` on that
  single image, ``time.sleep(0.1)``; then the cosine similarity of a query (the
  first video's vector) against every stored vector in a Python loop. VGG16 as the
  notebook had it (``include_top=False, pooling='max'``) with random weights, since
  weights cannot be downloaded here: this measures speed only.
- ours, VGG16: ``thumbsearch ingest`` through the library call the CLI makes, with
  model ``vgg16`` loading the notebook model's weights from a file it writes (the
  ``THUMBSEARCH_WEIGHTS_DIR`` path), then ``thumbsearch similar <id>``'s lookup.
- ours, default model: the same with the default model.

Run: ``.venv/bin/python -m bench.notebook [--videos N] [--quick]``; prints JSON.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.ingest import catalogue, youtube_env

if TYPE_CHECKING:
    import keras

    from tests.fakes.youtube import FakeYouTube

__all__ = ["main", "measure", "notebook_model", "run_notebook", "run_ours"]

QUERY = "notebook"


def notebook_model() -> keras.Model:
    """VGG16 as the notebook built it, with random weights (nothing can be downloaded)."""
    from indexer.models.registry import import_tensorflow_quietly

    import_tensorflow_quietly()
    import keras

    model: keras.Model = keras.applications.VGG16(include_top=False, pooling="max",
                                                  weights=None, input_shape=(224, 224, 3))
    return model


def run_notebook(model: keras.Model, fake: FakeYouTube, videos: int) -> float:
    """The notebook's loop over ``videos`` search results; returns videos per second."""
    import keras
    import requests
    from googleapiclient.discovery import build
    from PIL import Image

    youtube = build("youtube", "v3", developerKey=fake.api_key,
                    client_options={"api_endpoint": fake.api_endpoint},
                    static_discovery=True, cache_discovery=False)
    start = time.perf_counter()
    vectors: dict[str, np.ndarray] = {}
    token: str | None = None
    while len(vectors) < videos:
        request = youtube.search().list(q=QUERY, part="snippet", type="video",
                                        maxResults=min(50, videos - len(vectors)),
                                        pageToken=token)
        response = request.execute()
        for item in response["items"]:
            url = item["snippet"]["thumbnails"]["medium"]["url"]
            image = Image.open(io.BytesIO(requests.get(url, timeout=20).content))
            x = np.asarray(image.convert("RGB").resize((224, 224)), dtype=np.float32)
            x = keras.applications.vgg16.preprocess_input(x[None, ...])
            vectors[item["id"]["videoId"]] = model.predict(x, verbose=0)[0]
            time.sleep(0.1)
        token = response.get("nextPageToken")
        if token is None:
            break
    query = next(iter(vectors.values()))
    scores = []
    for video_id, vector in vectors.items():
        cosine = float(np.dot(query, vector) / (np.linalg.norm(query) * np.linalg.norm(vector)))
        scores.append((cosine, video_id))
    top = sorted(scores, reverse=True)[1:11]
    seconds = time.perf_counter() - start
    youtube.close()
    assert len(top) == min(10, len(vectors) - 1)
    return len(vectors) / seconds


def run_ours(fake: FakeYouTube, videos: int, model: str, weights_dir: Path | None,
             runtime: str, query_id: str) -> float:
    """``thumbsearch ingest``, then ``similar <query_id>``, as library calls; videos/s."""
    from indexer.ingest.queries import ingest_queries
    from indexer.service import build_service
    from indexer.settings import Settings
    from search.neighbours import similar_to_video

    with tempfile.TemporaryDirectory() as home:
        env = youtube_env(fake, home, model, runtime)
        if weights_dir is not None:
            env["THUMBSEARCH_WEIGHTS_DIR"] = str(weights_dir)
        settings = Settings.from_env(env)
        with build_service(settings) as service:
            service.embedder  # noqa: B018  (built, and converted for its runtime, off the clock)
            start = time.perf_counter()
            summary = ingest_queries(service, [QUERY], pages=(videos + 49) // 50,
                                     per_page=min(50, videos))
            answer = similar_to_video(service, query_id, k=10)
            seconds = time.perf_counter() - start
    assert summary.new == videos and len(answer.results) == min(10, videos - 1)
    return summary.new / seconds


def _write_weights(model: keras.Model, directory: Path) -> Path:
    import warnings

    path = directory / "vgg16.weights.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        model.save_weights(path)
    return directory


def measure(quick: bool = False, *, videos: int | None = None,
            runtime: str | None = None) -> dict[str, Any]:
    """The notebook with VGG16, ours with VGG16, ours with the default model; one run.

    Throughput is videos fully processed per second end to end (search -> stored
    vectors -> one query answered); ``vs_notebook_*`` divide ours by the notebook's.
    Defaults: 150 videos (``quick``: 12): enough that ours runs long past its fixed costs
    (the first search call, the pipeline starting, the index save), as a real ingest does.
    """
    from indexer.settings import DEFAULT_MODEL, parse_runtime
    from tests.fakes.youtube import FakeYouTube

    videos = videos or (12 if quick else 150)
    runtime = parse_runtime(runtime or os.environ.get("THUMBSEARCH_RUNTIME", ""))
    fakes, searches = catalogue(videos, QUERY)
    vgg16 = notebook_model()
    with tempfile.TemporaryDirectory() as weights, FakeYouTube(fakes, searches) as fake:
        weights_dir = _write_weights(vgg16, Path(weights))
        run_notebook(vgg16, fake, 2)  # warm-up, as a notebook's earlier cells would have
        notebook = run_notebook(vgg16, fake, videos)
        first = searches[QUERY][0]
        ours_vgg16 = run_ours(fake, videos, "vgg16", weights_dir, runtime, first)
        ours_default = run_ours(fake, videos, DEFAULT_MODEL, None, runtime, first)
    return {"videos": videos, "runtime": runtime, "default_model": DEFAULT_MODEL,
            "notebook_vgg16_img_s": round(notebook, 3),
            "ours_vgg16_img_s": round(ours_vgg16, 3),
            "ours_default_img_s": round(ours_default, 3),
            "vs_notebook_vgg16": round(ours_vgg16 / notebook, 2),
            "vs_notebook_default": round(ours_default / notebook, 2)}


def main() -> None:
    """Run the comparison and print its figures as JSON."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--videos", type=int, default=None, help="videos (default 30)")
    parser.add_argument("--runtime", default=None, help="runtime of ours (settings.RUNTIMES)")
    parser.add_argument("--quick", action="store_true", help="12 videos")
    args = parser.parse_args()
    print(json.dumps(measure(args.quick, videos=args.videos, runtime=args.runtime), indent=2))


if __name__ == "__main__":
    main()
