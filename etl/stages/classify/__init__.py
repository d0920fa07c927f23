"""classify (per crop): genre / mood / instrument / voice scores from essentia-tensorflow models.

The crop is read at 16 kHz mono (resampled with etl.dsp.audio), its Discogs-EffNet embeddings are
computed once per crop, averaged over patches, and every head runs on that mean (`TensorflowPredict2D`).
The embeddings are those of `TensorflowPredictEffnetDiscogs` (the model's own mel front end), but the
crops of a pool task (`crops_per_batch`) go through the model together: their mel patches, computed
as that algorithm computes them, fill the model's fixed batch of 64 patches together instead of
each crop being padded to 64 on its own (etl/stages/classify/effnet.py). Node names, labels and the model's
batch come from each model's metadata JSON (etl/stages/classify/modelfiles.py). The models are loaded once per
worker. With the embedding model absent the stage is skipped, with how to install it; no score is
ever stored that did not come out of a model.

Stored in `crop_classes`, one row per (crop, head): every label's score and the `top_k` best; with
`store_embedding`, the mean embedding in `crop_embeddings` (the `similar_crops` query ranks by it).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from etl.engine.config import not_hashed, ranged
from etl.engine.errors import ConfigError
from etl.engine.catalog import not_installed
from etl.engine.stage import Read, Reason, Stage
from etl.engine.tables import Rows, Write
from etl.engine.worker_model import WorkerModel
from etl.stages.classify import effnet
from etl.stages.classify import modelfiles as essentia_models

if TYPE_CHECKING:
    import numpy as np

SAMPLE_RATE = 16000  # the Discogs-EffNet models' rate
INSTALL = "pip install --pre 'essentia-tensorflow==2.1b6.dev1389'"


@dataclass(frozen=True)
class Params:
    model_dir: str = not_hashed("")           # the .pb / .json files ("": <models dir>/essentia, `etl models fetch`'s);
    #                                           not hashed: the files themselves are (model_files)
    embedding: str = "discogs-effnet-bs64-1"  # the embedding model
    heads: tuple[str, ...] = ()               # head model names; (): every head installed in model_dir
    top_k: int = ranged(5, 1, 1000)           # labels kept as `top` per head
    store_embedding: bool = False             # keep each crop's mean embedding (crop_embeddings), for similarity search
    device: str = not_hashed("auto")          # auto (TensorFlow's choice: a GPU it can see) | cpu
    # Crops per pool task: their patches share the embedding model's runs (only the last run of a task
    # is padded). Not `batch_size`: every stage table has that engine key already (items per commit).
    crops_per_batch: int = ranged(32, 1, 4096, hashed=False)

    def __post_init__(self) -> None:
        if self.device not in ("auto", "cpu"):
            raise ConfigError(f"[classify] device must be auto or cpu, not {self.device!r}")


def _heads(params: Params) -> list[str]:
    return list(params.heads) or essentia_models.installed_heads(params.model_dir)


def unavailable(params: Params) -> str | None:
    if importlib.util.find_spec("essentia") is None:
        return Reason(f"essentia-tensorflow not installed: {INSTALL}",
                      "essentia-tensorflow not installed — `etl models` says how")
    model = essentia_models.load(params.model_dir, params.embedding)
    if not model.found:
        return Reason(f"model {params.embedding} not found: {model.problem}; to install it: "
                      f"{essentia_models.install_hint(params.embedding, params.model_dir)}",
                      not_installed("classify", params.embedding))
    try:
        _, size = essentia_models.embedding_output(model)
    except (KeyError, ValueError, IndexError, TypeError) as error:
        return Reason(f"model {params.embedding}: {error}", f"model {params.embedding} unusable — `etl models` says why")
    for name in params.heads:  # heads named in the configuration must all be usable
        try:
            essentia_models.head(essentia_models.load(params.model_dir, name), params.embedding, size)
        except (KeyError, ValueError, IndexError, TypeError) as error:
            return Reason(f"{error}; to install it: {essentia_models.install_hint(name, params.model_dir)}",
                          f"head {name} unusable — `etl models` says why")
    return None


def models(params: Params, checksums: bool = True) -> list[dict[str, Any]]:
    """What `etl models` shows for this stage: the embedding model and each head."""
    embedding = essentia_models.load(params.model_dir, params.embedding)
    size = None
    if embedding.found:
        try:
            size = essentia_models.embedding_output(embedding)[1]
        except (KeyError, ValueError, IndexError, TypeError):
            pass
    rows = [{"model": params.embedding, "library": "essentia-tensorflow", "found": embedding.found,
             "where": str(embedding.graph), "files": embedding.describe(), "licence": essentia_models.LICENCE,
             "problem": embedding.problem,
             "install": None if embedding.found else essentia_models.install_hint(params.embedding, params.model_dir)}]
    for name in _heads(params):
        model = essentia_models.load(params.model_dir, name)
        problem = model.problem
        if problem is None and size is not None:
            try:
                essentia_models.head(model, params.embedding, size)
            except (KeyError, ValueError, IndexError, TypeError) as error:
                problem = str(error)
        rows.append({"model": name, "library": "essentia-tensorflow", "found": model.found,
                     "where": str(model.graph), "files": model.describe(), "licence": essentia_models.LICENCE,
                     "problem": problem,
                     "install": None if model.found else essentia_models.install_hint(name, params.model_dir)})
    return rows


def model_files(params: Params) -> list[str]:
    """The graphs and metadata the scores come from: a head installed or replaced re-queues the crops."""
    return [str(path) for name in (params.embedding, *_heads(params))
            for path in essentia_models.files(params.model_dir, name)]


class Classifier:
    """The embedding model and the usable heads, loaded once (essentia's own loaders)."""

    def __init__(self, params: Params) -> None:
        if params.device == "cpu":
            os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before TensorFlow starts
        import essentia
        import essentia.standard as es

        essentia.log.infoActive = False
        embedding = essentia_models.load(params.model_dir, params.embedding)
        if not embedding.found:
            raise ConfigError(f"[classify] model {params.embedding}: {embedding.problem}")
        output, size = essentia_models.embedding_output(embedding)
        self.embedding_model = params.embedding
        self.front_end = effnet.FrontEnd()
        self.embed = effnet.Embeddings(str(embedding.graph), essentia_models.embedding_input(embedding), output,
                                       size, essentia_models.embedding_batch(embedding))
        self.heads: list[tuple[essentia_models.Head, Any]] = []
        self.refused: dict[str, str] = {}
        for name in _heads(params):
            try:
                head = essentia_models.head(essentia_models.load(params.model_dir, name), params.embedding, size)
            except (KeyError, ValueError, IndexError, TypeError) as error:
                if name in params.heads:
                    raise ConfigError(f"[classify] {error}") from None
                self.refused[name] = str(error)
                continue
            self.heads.append((head, es.TensorflowPredict2D(graphFilename=head.graph, input=head.input,
                                                            output=head.output)))
        self.top_k = params.top_k

    def patches(self, mono16k: np.ndarray) -> np.ndarray:
        """The crop's mel patches (the embedding model's input); BadInput when it has none."""
        import numpy as np

        from etl.engine.errors import BadInput

        if len(mono16k) == 0:
            raise BadInput("the crop holds no audio")
        patches = self.front_end.patches(np.ascontiguousarray(mono16k, dtype=np.float32))
        if len(patches) == 0:
            raise BadInput(f"the crop is too short for one embedding patch ({len(mono16k) / SAMPLE_RATE:.2f} s; "
                           f"a patch needs {effnet.MIN_SAMPLES / SAMPLE_RATE:.2f} s)")
        return patches

    def embeddings(self, crops: list[np.ndarray]) -> list[np.ndarray]:
        """Each crop's mean embedding over its patches (the size of the model's embedding output), the
        patches of all the crops run together."""
        import numpy as np

        return [rows.mean(axis=0).astype(np.float32) for rows in self.embed(crops)]

    def embedding(self, mono16k: np.ndarray) -> np.ndarray:
        """The mean over patches of one crop's embeddings."""
        return self.embeddings([self.patches(mono16k)])[0]

    def classify(self, embeddings: np.ndarray) -> list[list[dict[str, Any]]]:
        """Each head on a batch of mean embeddings (crops, size): per crop, one row per head."""
        import numpy as np

        out: list[list[dict[str, Any]]] = [[] for _ in range(len(embeddings))]
        batch = np.ascontiguousarray(embeddings, dtype=np.float32)
        for head, predict in self.heads:
            scores = np.asarray(predict(batch))
            if scores.shape != (len(batch), len(head.labels)):
                from etl.engine.errors import ItemError

                raise ItemError(f"head {head.name} gave scores of shape {scores.shape}, its metadata names "
                                f"{len(head.labels)} classes")
            for row, crop in zip(scores, out):
                order = np.argsort(-row, kind="stable")[:self.top_k]
                crop.append({"head": head.name, "embedding_model": self.embedding_model,
                             "labels": list(head.labels), "scores": [float(s) for s in row],
                             "top": [{"label": head.labels[i], "score": float(row[i])} for i in order]})
        return out


def read_16k_mono(path: str) -> np.ndarray:
    from etl.dsp import audio

    return audio.read_mono_at(path, SAMPLE_RATE)


_classifier = WorkerModel(Classifier, lambda params: params, files=lambda params: model_files(params))


def init_worker(params: Params) -> None:
    """Load the embedding model and the heads once per worker process."""
    _classifier.init(params)


def classifier(params: Params) -> Classifier:
    return _classifier.get(params)


def process_batch(items: list[dict[str, Any]], params: Params) -> list[Any]:
    """The crops of a pool task through the models together: each crop read and cut into patches on
    its own (a crop that cannot be read, or is too short for one patch, fails alone), the patches of
    all of them through the embedding model in full batches, each crop's mean embedding through every
    head in one run. A model run that raises fails the task as a whole (the engine then runs its
    crops one by one through `process`)."""
    model = classifier(params)
    results: list[Any] = []
    patches: dict[int, np.ndarray] = {}
    for index, item in enumerate(items):
        try:
            patches[index] = model.patches(read_16k_mono(item["path"]))
            results.append(None)
        except Exception as error:  # this crop's own failure, classified by the engine
            results.append(error)
    if patches:
        import numpy as np

        embeddings = model.embeddings(list(patches.values()))
        for index, embedding, classes in zip(patches, embeddings, model.classify(np.stack(embeddings))):
            result: dict[str, Any] = {"classes": classes}
            if params.store_embedding:
                result["embedding"] = [float(x) for x in embedding]
            results[index] = result
    return results


def process(item: dict[str, Any], params: Params) -> dict[str, Any]:
    """One crop: what `process_batch` gives it."""
    [result] = process_batch([item], params)
    if isinstance(result, Exception):
        raise result
    return result


write = Write(rows=(Rows("new_classes", "crop_classes", lambda o, params: [
                  {"crop_id": o.item_id, "track_id": o.item["track_id"], **row} for row in o.result["classes"]]),
                    Rows("new_embeddings", "crop_embeddings", lambda o, params: [
                  {"crop_id": o.item_id, "track_id": o.item["track_id"], "embedding_model": params.embedding,
                   "embedding": o.result["embedding"]}] if "embedding" in o.result else [])),
              statements=("insert_classes", "insert_embeddings"))


STAGE = Stage(
    name="classify",
    description="genre / mood / instrument / voice scores with essentia-tensorflow models",
    process=process,
    write=write,
    reads=(Read("crops"),),
    Params=Params,
    init_worker=init_worker,
    unavailable=unavailable,
    models=models,
    model_files=model_files,
    process_batch=process_batch,
    batch_size=64,
    chunk_size=lambda params: params.crops_per_batch,
)
