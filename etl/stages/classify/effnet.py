"""Discogs-EffNet embeddings of many crops through full model batches.

`TensorflowPredictEffnetDiscogs` runs one crop at a time and pads every crop to the model's batch:
the published graphs take exactly 64 patches a run, so a 10 s crop (9 patches) costs what 64 s of
audio does, and each call also opens a new TensorFlow session. Here the same computation is split in
two: each crop's mel patches come from essentia's own front end, computed the way the algorithm's
inner network does it (essentia's src/algorithms/machinelearning/tensorflowpredicteffnetdiscogs.cpp),
and the patches of several crops are stacked into each run of the graph (`TensorflowPredict`, one
session kept open); only the last run of a chunk is padded, and each crop gets back the rows of its
own patches. A patch's embedding does not depend on the other patches of its run, so each crop's
embeddings are the ones the algorithm gives (the tests compare them on real crops).

What the algorithm does inside, and what is done here:
  - FrameCutter (frame 512, hop 256, the first frame centred on sample 0, zero-padded at both ends,
    the last one the first whose centre is at or past the end): its frames are cut here with numpy
    (pure copies), `frame_count` of them. A silent frame (essentia's isSilent: instant power below
    1e-10) gets its -100 dB noise (NoiseAdder) as the streaming FrameCutter adds it.
  - TensorflowInputMusiCNN on every frame (96 mel bands, log-compressed): essentia's algorithm.
  - VectorRealToTensor: patches of 128 frames every 62 frames; a last partial patch is discarded.
  - The fixed batch: the standard algorithm zero-pads the signal so that the patches fill whole
    batches, runs them, and keeps the first `patch_count(samples)` results. That count is its own
    estimate of the patches (it counts one frame fewer than FrameCutter cuts): when the estimate is
    one short, the crop's last patch is dropped. `patch_count` is that arithmetic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

FRAME_SIZE = 512      # TensorflowPredictEffnetDiscogs' hard-coded front end (MusiCNN-style mel bands)
HOP_SIZE = 256
BANDS = 96
PATCH_SIZE = 128      # frames per patch (the algorithm's patchSize default, the model's input)
PATCH_HOP = 62        # frames between patch starts (patchHopSize default: ~1 patch per second)
DEFAULT_BATCH = 64    # patches per run where the model takes any number (the algorithm's batchSize default)
SILENCE_CUTOFF = 1e-10   # essentia's isSilent: instant power below -100 dB
NOISE_LEVEL_DB = -100    # what the streaming FrameCutter adds to a silent frame (NoiseAdder)


def frame_count(samples: int) -> int:
    """Frames FrameCutter cuts from `samples` samples: starts at -256, -256 + 256k, ..., the last the
    first frame whose centre (start + 256) is at or past the end."""
    return 0 if samples <= 0 else -(-samples // HOP_SIZE) + 1


def patch_count(samples: int) -> int:
    """Patches `TensorflowPredictEffnetDiscogs` (batchSize 64, lastPatchMode "discard", lastBatchMode
    "same") returns for a signal of `samples` samples: its padSignal estimate,
    1 + ceil((samples - 256) / 256) frames, 1 + floor((frames - 128) / 62) patches (0 when that is
    not positive: the algorithm returns nothing). Integer arithmetic gives its float results for any
    signal under 2**24 samples (17 minutes at 16 kHz)."""
    if samples <= 0:
        return 0
    frames = 1 + -(-(samples - FRAME_SIZE // 2) // HOP_SIZE)
    return max(0, 1 + (frames - PATCH_SIZE) // PATCH_HOP)


# The shortest signal `patch_count` gives a patch (2.03 s at 16 kHz).
MIN_SAMPLES = HOP_SIZE * (PATCH_SIZE - 2) + FRAME_SIZE // 2 + 1


class FrontEnd:
    """A crop's mel patches, as `TensorflowPredictEffnetDiscogs` feeds them to the model."""

    def __init__(self) -> None:
        import essentia.standard as es

        self.mel = es.TensorflowInputMusiCNN()
        self.power = es.InstantPower()
        self.noise = es.NoiseAdder(level=NOISE_LEVEL_DB, fixSeed=False)

    def frames(self, signal: np.ndarray) -> np.ndarray:
        """FrameCutter's frames (frame_count, 512), a read-only view of a zero-padded copy."""
        import numpy as np

        count = frame_count(len(signal))
        padded = np.zeros(HOP_SIZE * (count + 1), dtype=np.float32)
        padded[FRAME_SIZE // 2:FRAME_SIZE // 2 + len(signal)] = signal
        return np.lib.stride_tricks.sliding_window_view(padded, FRAME_SIZE)[::HOP_SIZE][:count]

    def bands(self, signal: np.ndarray) -> np.ndarray:
        """The mel bands of every frame (frame_count, 96)."""
        import numpy as np

        frames = self.frames(signal)
        out = np.empty((len(frames), BANDS), dtype=np.float32)
        # The silence test in float64 first (cheap, all frames at once); essentia's own (float32
        # accumulation) decides for the few frames near the cutoff.
        quiet = np.flatnonzero(np.einsum("ij,ij->i", frames, frames, dtype=np.float64) / FRAME_SIZE
                               < 10 * SILENCE_CUTOFF)
        silent = {int(i) for i in quiet if self.power(np.ascontiguousarray(frames[i])) < SILENCE_CUTOFF}
        for index, frame in enumerate(frames):
            if index in silent:
                # The streaming FrameCutter adds the noise to the frame's samples shifted by its left
                # zero padding: the first frame (half padding) becomes noise alone.
                frame = self.noise(np.zeros(FRAME_SIZE, np.float32) if index == 0 else np.ascontiguousarray(frame))
            out[index] = self.mel(frame)
        return out

    def patches(self, signal: np.ndarray) -> np.ndarray:
        """The patches the algorithm returns results for (patch_count, 128, 96): a view of the bands."""
        import numpy as np

        count = patch_count(len(signal))
        if count == 0:
            return np.zeros((0, PATCH_SIZE, BANDS), dtype=np.float32)
        bands = self.bands(signal)
        windows = np.lib.stride_tricks.sliding_window_view(bands, PATCH_SIZE, axis=0)  # (n, 96, 128)
        return windows[::PATCH_HOP][:count].transpose(0, 2, 1)


class Embeddings:
    """The embedding graph run on stacked patches: `batch` patches a run where the graph takes a fixed
    number (the last run zero-padded), up to DEFAULT_BATCH a run (none padded) where it takes any."""

    def __init__(self, graph: str, input_node: str, output_node: str, size: int, batch: int | None) -> None:
        import essentia.standard as es

        self.input, self.output, self.size = input_node, output_node, size
        self.batch, self.fixed = (batch, True) if batch else (DEFAULT_BATCH, False)
        self.predict = es.TensorflowPredict(graphFilename=graph, inputs=[input_node], outputs=[output_node])
        self.runs = self.patches_run = 0  # counters (the benchmark reports the padding)

    def __call__(self, crops: list[np.ndarray]) -> list[np.ndarray]:
        """Each crop's patches (n_i, 128, 96) in, each crop's embeddings (n_i, size) out, in order."""
        import numpy as np

        total = sum(len(p) for p in crops)
        out = np.empty((total, self.size), dtype=np.float32)
        buffer = np.zeros((self.batch, 1, PATCH_SIZE, BANDS), dtype=np.float32)
        filled = done = 0
        for patches in crops:
            taken = 0
            while taken < len(patches):
                count = min(len(patches) - taken, self.batch - filled)
                buffer[filled:filled + count, 0] = patches[taken:taken + count]
                filled, taken = filled + count, taken + count
                if filled == self.batch:
                    out[done:done + filled] = self._run(buffer, filled)
                    done, filled = done + filled, 0
        if filled:
            if self.fixed:
                buffer[filled:] = 0.0
                out[done:done + filled] = self._run(buffer, filled)
            else:
                out[done:done + filled] = self._run(buffer[:filled], filled)
        bounds = np.cumsum([0, *(len(p) for p in crops)])
        return [out[start:end] for start, end in zip(bounds[:-1], bounds[1:])]

    def _run(self, batch: np.ndarray, rows: int) -> np.ndarray:
        """One run of the graph; the rows of the first `rows` patches."""
        import essentia
        import numpy as np

        pool = essentia.Pool()
        pool.set(self.input, batch)
        result = np.asarray(self.predict(pool)[self.output])
        self.runs, self.patches_run = self.runs + 1, self.patches_run + len(batch)
        if result.shape[0] != len(batch) or result.size != len(batch) * self.size:
            raise ValueError(f"the embedding model gave output of shape {result.shape} for {len(batch)} patches, "
                             f"its metadata says {self.size} values a patch")
        return result.reshape(len(batch), self.size)[:rows]

