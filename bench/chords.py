"""Chords throughput: the chords stage against today's stage and against bare madmom, like for like.

    python bench/chords.py [--crops 8] [--crop-s 20] [--rounds 1] [--today-ref 8802204] [--torch] [FOLDER ...]

FOLDER defaults to data/demo-music (`make demo` fetches it) or else ../shared/corpus. The crops are
--crop-s windows of the folder's tracks (the middle of each track, then further windows), written as
FLAC at the track's rate as the crops stage writes them, --crops of them. Side by side in one run:
  - "stage": the chords stage's worker function (`chords.process`: decode, loudness gate, mono,
    resample, chord features + CRF, key, segments on the beat grid) as on this branch;
  - "today": the same function at --today-ref (main before issue 25: madmom's processors as they
    come), imported as a separate package (bench/library.py `stage_at`);
  - "bare madmom": a loop of the same library calls without the stage: decode, mono, resample
    (etl.dsp.audio), madmom's CNNChordFeatureProcessor + CRFChordRecognitionProcessor and
    CNNKeyRecognitionProcessor, built once.
Each side runs in its own fresh process with one maths-library thread (OMP_NUM_THREADS=1 and
threadpoolctl), builds its processors and runs a first crop before the clock starts (warm: imports
and network loading are outside every timer), then processes every crop once. Rounds alternate the
sides and each side's best round (CPU seconds) counts. CPU seconds of the process are the per-core
figure (the machine may be shared); wall seconds are beside them. After the sides, the stage's
time per part (decode and meter, chord features, CRF decoding, key, the rest) on the same crops.
--torch also times the two networks alone evaluated with torch's conv2d (one thread) beside the
stage's numpy matrix products, on the first crop: the measurement behind choosing numpy.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from library import REPO, audio_files, best_of_rounds, default_folders, run_side, stage_at, stage_side

TODAY = "8802204"  # main before issue 25: madmom's chord and key processors called as they come


def cut_crops(folders: list[Path], dest: Path, count: int, crop_s: float) -> list[Path]:
    """`count` windows of `crop_s` seconds, as FLAC at their track's rate: each track's middle window
    first, then its neighbours, round robin over the tracks."""
    import soundfile as sf

    tracks = []
    for path in audio_files(folders):
        try:
            info = sf.info(path)
        except RuntimeError:
            continue
        if info.duration >= crop_s:
            tracks.append((path, info.samplerate, int(info.duration // crop_s)))
    if not tracks:
        raise SystemExit(f"no track of {crop_s} s or more in {', '.join(map(str, folders))}")
    windows = []
    for turn in range(max(n for _, _, n in tracks)):
        for path, rate, n in tracks:
            if turn < n:  # windows middle-out: n // 2, n // 2 + 1, n // 2 - 1, ...
                offset = (turn + 1) // 2 * (1 if turn % 2 else -1)
                windows.append((path, rate, (n // 2 + offset) % n))
    crops = []
    for index, (path, rate, window) in enumerate(windows[:count]):
        with sf.SoundFile(path) as handle:
            handle.seek(int(window * crop_s * rate))
            block = handle.read(int(crop_s * rate), dtype="float32", always_2d=True)
        crops.append(dest / f"crop{index:03d}.flac")
        sf.write(crops[-1], block, rate)
    return crops


def item_of(path: Path) -> dict:
    import soundfile as sf

    duration = sf.info(path).duration
    return {"item_id": path.name, "path": str(path), "beat_times_s": [round(0.5 * i, 3) for i in range(int(duration * 2))],
            "duration_s": duration}


def side_stage(module_name: str, paths: list[Path]) -> dict:
    """One stage side in this process: warm, then every crop through `process`."""
    items = [item_of(path) for path in paths]
    return stage_side(module_name, items, lambda module, params: module.process(items[0], params))


def side_madmom(paths: list[Path]) -> dict:
    """Bare madmom: decode, mono, resample, the chord and key processors (built once)."""
    from madmom.audio.signal import Signal
    from madmom.features.chords import CNNChordFeatureProcessor, CRFChordRecognitionProcessor
    from madmom.features.key import CNNKeyRecognitionProcessor
    from threadpoolctl import threadpool_limits

    from etl.dsp import audio

    threadpool_limits(1)
    features, decode, key = CNNChordFeatureProcessor(), CRFChordRecognitionProcessor(), CNNKeyRecognitionProcessor()

    def recognise(path: Path) -> float:
        with audio.open_audio(str(path)) as handle:
            block, rate = audio.read_block(handle), handle.samplerate
        signal = Signal(audio.resample(block.mean(axis=1), rate, 44100), sample_rate=44100, num_channels=1)
        decode(features(signal))
        key(signal)
        return len(block) / rate

    recognise(paths[0])  # warm
    cpu, wall = time.process_time(), time.perf_counter()
    audio_s = sum(recognise(path) for path in paths)
    return {"cpu_s": time.process_time() - cpu, "wall_s": time.perf_counter() - wall, "audio_s": audio_s}


def stage_parts(paths: list[Path]) -> dict:
    """CPU seconds of the stage's parts on these crops (warm, one thread)."""
    from madmom.audio.signal import Signal
    from threadpoolctl import threadpool_limits

    from etl.stages import chords
    from etl.stages.chords import harmony

    threadpool_limits(1)
    params = chords.Params()
    model = chords.recogniser(params)
    items = [item_of(path) for path in paths]
    chords.process(items[0], params)  # warm
    parts = dict.fromkeys(["decode, meter, resample", "chord features", "CRF decoding", "key",
                           "segments on the beat grid"], 0.0)
    for item in items:
        mark = time.process_time()
        mono, duration_s = chords.read_44k_mono(item["path"])
        signal = Signal(mono, sample_rate=chords.MADMOM_RATE, num_channels=1)
        parts["decode, meter, resample"] += time.process_time() - mark
        mark = time.process_time()
        features = model.features(signal)
        parts["chord features"] += time.process_time() - mark
        mark = time.process_time()
        decoded = model.decode(features)
        parts["CRF decoding"] += time.process_time() - mark
        mark = time.process_time()
        model.key_scores(signal)
        parts["key"] += time.process_time() - mark
        mark = time.process_time()
        segments = harmony.segments(decoded, duration_s, item["beat_times_s"])
        harmony.beat_chords(segments, item["beat_times_s"], duration_s)
        harmony.chords_text(segments)
        parts["segments on the beat grid"] += time.process_time() - mark
    return parts


def torch_network(network: object):
    """A madmom chord or key CNN as torch operations (NCHW): the layers those two networks use."""
    import numpy as np
    import torch
    from madmom.ml.nn.activations import elu, linear, relu
    from madmom.ml.nn.layers import (
        AverageLayer,
        BatchNormLayer,
        ConvolutionalLayer,
        MaxPoolLayer,
        PadLayer,
    )

    activations = {relu: torch.relu, elu: torch.nn.functional.elu, linear: lambda x: x}
    steps = []
    for layer in network.layers:
        if isinstance(layer, ConvolutionalLayer):
            assert layer.pad == "valid" and layer.stride in (None, 1, (1, 1))
            weight = torch.from_numpy(layer.weights[:, :, ::-1, ::-1].transpose(1, 0, 2, 3).copy())
            bias, act = float(np.asarray(layer.bias).ravel()[0]), activations[layer.activation_fn]
            steps.append(lambda x, w=weight, b=bias, f=act: f(torch.nn.functional.conv2d(x, w) + b))
        elif isinstance(layer, BatchNormLayer):
            scale = torch.from_numpy(layer.gamma * layer.inv_std)[:, None, None]
            mean, beta = torch.from_numpy(layer.mean)[:, None, None], torch.from_numpy(layer.beta)[:, None, None]
            act = activations[layer.activation_fn]
            steps.append(lambda x, m=mean, s=scale, b=beta, f=act: f((x - m) * s + b))
        elif isinstance(layer, MaxPoolLayer):
            steps.append(lambda x, k=tuple(layer.size): torch.nn.functional.max_pool2d(x, k))
        elif isinstance(layer, PadLayer):
            assert tuple(layer.axes) == (0, 1) and layer.value == 0
            steps.append(lambda x, w=layer.width: torch.nn.functional.pad(x, (w, w, w, w)))
        elif isinstance(layer, AverageLayer):
            assert tuple(layer.axis) == (0, 1)
            steps.append(lambda x: x.mean(dim=(2, 3)))
        else:
            raise NotImplementedError(type(layer).__name__)

    def run(data: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))[None, None]
            for step in steps:
                x = step(x)
            return x[0].permute(*range(1, x.dim() - 1), 0).numpy() if x.dim() == 4 else x[0].numpy()

    return run


def networks_numpy_vs_torch(path: Path, repeats: int = 5) -> dict:
    """The chord and key networks alone on one crop: the stage's numpy products, torch's conv2d."""
    import numpy as np
    import torch
    from madmom.audio.signal import Signal
    from threadpoolctl import threadpool_limits

    from etl.stages import chords
    from etl.stages.chords import convnet

    threadpool_limits(1)
    torch.set_num_threads(1)
    model = chords.recogniser(chords.Params())
    mono, duration_s = chords.read_44k_mono(str(path))
    signal = Signal(mono, sample_rate=chords.MADMOM_RATE, num_channels=1)
    lines = [f"  the networks alone on {duration_s:.0f} s (one thread, best of {repeats}, CPU s):"]
    for name, steps in (("chord features CNN", model.chord_features), ("key CNN", model.key)):
        index = next(i for i, step in enumerate(steps) if isinstance(step, (convnet.Network, convnet.Ensemble)))
        network = steps[index]
        ours = network.networks[0] if isinstance(network, convnet.Ensemble) else network
        inputs = convnet.run(steps[:index], signal)
        candidates = {"numpy (the stage)": ours, "torch conv2d": torch_network(ours.source)}
        results, times = {}, {}
        for label, run in candidates.items():
            run(inputs)
            best = float("inf")
            for _ in range(repeats):
                mark = time.process_time()
                results[label] = np.asarray(run(inputs)).squeeze()
                best = min(best, time.process_time() - mark)
            times[label] = best
        apart = float(np.abs(results["numpy (the stage)"] - results["torch conv2d"]).max())
        lines.append(f"    {name:20s} numpy {times['numpy (the stage)']:.3f} s, torch {times['torch conv2d']:.3f} s "
                     f"(torch {times['numpy (the stage)'] / times['torch conv2d']:.2f}x numpy's speed; "
                     f"outputs {apart:.1e} apart)")
    return {"lines": lines}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path)
    parser.add_argument("--crops", type=int, default=8)
    parser.add_argument("--crop-s", type=float, default=20.0, help="seconds per crop (8 bars at 96 BPM: 20 s)")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds of the three sides (best counts)")
    parser.add_argument("--today-ref", default=TODAY, help="the commit whose chords stage is 'today'")
    parser.add_argument("--torch", action="store_true", help="also time the networks alone with torch's conv2d")
    parser.add_argument("--side", choices=("stage", "today", "madmom", "parts", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        if args.side == "madmom":
            result = side_madmom(args.folders)
        elif args.side == "parts":
            result = stage_parts(args.folders)
        elif args.side == "torch":
            result = networks_numpy_vs_torch(args.folders[0])
        else:
            result = side_stage("etl.stages.chords" if args.side == "stage" else "chords_today", args.folders)
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory() as tmp:
        paths = cut_crops(args.folders or default_folders(), Path(tmp), args.crops, args.crop_s)
        today = stage_at(args.today_ref, "chords", Path(tmp) / "today")
        sides = {"stage": "chords stage (this branch)", "today": f"chords stage ({args.today_ref}, today)",
                 "madmom": "bare madmom, same calls"}
        best_of_rounds(args.rounds, sides, lambda side: run_side(__file__, side, paths, today),
                       f"chords (cnn) on {len(paths)} crops of {args.crop_s:.0f} s")
        parts = run_side(__file__, "parts", paths)
        total = sum(parts.values())
        print(f"  this branch per part ({total:.1f} CPU s): "
              + ", ".join(f"{name} {seconds / total:.0%}" for name, seconds in parts.items()))
        if args.torch:
            print("\n".join(run_side(__file__, "torch", paths[:1])["lines"]))


if __name__ == "__main__":
    main()
