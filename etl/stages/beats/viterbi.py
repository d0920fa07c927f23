"""madmom's Viterbi decoding, compiled and with a fraction of its memory; the same path.

madmom's HiddenMarkovModel.viterbi (Cython) visits every transition of every state at every frame
and stores a back-pointer for every state and frame. The downbeat tracker's bar state space is a
chain: of the ~15,000 states of a 4/4 bar at 55-215 BPM, all but the 240 where a beat starts have
exactly one predecessor (the previous position at the same tempo, log probability 0). Those need
no stored back-pointer (it is always that predecessor) and no inner loop; only beat starts are
searched over their predecessors and remembered. The arithmetic is madmom's, term for term
((previous + transition) + observation in float64, the first of equal maxima kept, the first best
final state), so the path and its log probability are madmom's bit for bit; tests compare both
on real music. Back-pointers fall from frames x states (~0.5 GB for 80 s) to frames x beat
starts (~8 MB).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

_compiled: Any = None


def _kernel() -> Any:
    """The decoding loop, compiled with numba for madmom's array types when first asked for (then
    loaded from numba's cache on disk: a worker pays milliseconds, not the seconds of a compile)."""
    global _compiled
    if _compiled is None:
        from numba import njit

        @njit("Tuple((uint32[::1], float64))(uint32[::1], uint32[::1], float64[::1], uint32[::1], float64[:, ::1], "
              "float64[::1], int64[::1], int64)", cache=True)
        def decode(states: np.ndarray, pointers: np.ndarray, log_probabilities: np.ndarray,
                   observation_pointers: np.ndarray, densities: np.ndarray, initial: np.ndarray,
                   slot: np.ndarray, searched: int) -> tuple[np.ndarray, float]:
            frames = densities.shape[0]
            count = len(pointers) - 1
            previous = initial.copy()
            current = np.empty(count)
            back = np.empty((frames, searched), dtype=np.uint32)  # best predecessor of each searched state
            for frame in range(frames):
                for state in range(count):
                    density = densities[frame, observation_pointers[state]]
                    begin, end = pointers[state], pointers[state + 1]
                    best = -np.inf
                    if end - begin == 1:
                        candidate = previous[states[begin]] + log_probabilities[begin] + density
                        if candidate > best:
                            best = candidate
                    else:
                        index = slot[state]
                        for pointer in range(begin, end):
                            candidate = previous[states[pointer]] + log_probabilities[pointer] + density
                            if candidate > best:  # strictly greater: the first of equal maxima stays
                                best = candidate
                                back[frame, index] = states[pointer]
                    current[state] = best
                previous, current = current, previous
            state = np.argmax(previous)
            log_probability = previous[state]
            path = np.empty(frames if np.isfinite(log_probability) else 0, dtype=np.uint32)
            for frame in range(len(path) - 1, -1, -1):
                path[frame] = state
                index = slot[state]
                state = states[pointers[state]] if index < 0 else back[frame, index]
            return path, log_probability

        _compiled = decode
    return _compiled


class CompiledHMM:
    """Stands in for a madmom HiddenMarkovModel in madmom's trackers (they call `viterbi` and read
    `transition_model` and `observation_model`)."""

    def __init__(self, hmm: Any) -> None:
        self.transition_model = hmm.transition_model
        self.observation_model = hmm.observation_model
        self.initial_distribution = hmm.initial_distribution
        incoming = np.diff(self.transition_model.pointers)
        searched = np.flatnonzero(incoming != 1)  # states with several (or no) predecessors
        self.slot = np.full(len(incoming), -1, dtype=np.int64)
        self.slot[searched] = np.arange(len(searched))
        self.searched = len(searched)

    def viterbi(self, observations: np.ndarray) -> tuple[np.ndarray, float]:
        model = self.transition_model
        with np.errstate(divide="ignore"):  # a zero initial probability is log 0 = -inf, as madmom
            initial = np.log(self.initial_distribution)
        path, log_probability = _kernel()(
            model.states, model.pointers, model.log_probabilities, self.observation_model.pointers,
            np.ascontiguousarray(self.observation_model.log_densities(observations), dtype=np.float64),
            initial, self.slot, self.searched)
        if not np.isfinite(log_probability):
            warnings.warn("-inf log probability during Viterbi decoding cannot find a valid path", RuntimeWarning)
        return path, float(log_probability)


def compile_tracker(tracker: Any) -> Any:
    """A madmom DBN tracker with its HMMs decoded by CompiledHMM (same beats, less time and memory)."""
    _kernel()
    tracker.hmms = [CompiledHMM(hmm) for hmm in tracker.hmms]
    return tracker
