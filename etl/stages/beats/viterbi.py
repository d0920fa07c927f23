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

        @njit("Tuple((uint32[::1], float64))(uint32[::1], uint32[::1], float64[::1], float64[::1], uint32[::1], "
              "float64[:, ::1], float64[::1], int64[::1], int64[::1])", cache=True)
        def decode(states: np.ndarray, pointers: np.ndarray, log_probabilities: np.ndarray, chain_log: np.ndarray,
                   observation_pointers: np.ndarray, densities: np.ndarray, initial: np.ndarray,
                   searched: np.ndarray, slot: np.ndarray) -> tuple[np.ndarray, float]:
            frames = densities.shape[0]
            count = len(pointers) - 1
            previous = initial.copy()
            current = np.empty(count)
            back = np.empty((frames, len(searched)), dtype=np.uint32)  # best predecessor of each searched state
            for frame in range(frames):
                row = densities[frame]
                # every state as if its only predecessor were the one before it: a loop without
                # branches the compiler vectorises; the searched states are redone below
                for state in range(1, count):
                    candidate = previous[state - 1] + chain_log[state] + row[observation_pointers[state]]
                    current[state] = candidate if candidate > -np.inf else -np.inf  # NaN stays -inf, as madmom
                for index in range(len(searched)):
                    state = searched[index]
                    density = row[observation_pointers[state]]
                    best = -np.inf
                    for pointer in range(pointers[state], pointers[state + 1]):
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
                state = state - 1 if index < 0 else back[frame, index]
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
        model = self.transition_model
        first = model.pointers[:-1]
        # a chain state's only predecessor is the state before it; every other state is searched
        chain = (np.diff(model.pointers) == 1) & (model.states[first] == np.arange(len(first)) - 1)
        self.chain_log = np.where(chain, model.log_probabilities[first], -np.inf)
        self.searched = np.flatnonzero(~chain).astype(np.int64)
        self.slot = np.full(len(first), -1, dtype=np.int64)
        self.slot[self.searched] = np.arange(len(self.searched))

    def viterbi(self, observations: np.ndarray) -> tuple[np.ndarray, float]:
        model = self.transition_model
        with np.errstate(divide="ignore"):  # a zero initial probability is log 0 = -inf, as madmom
            initial = np.log(self.initial_distribution)
        path, log_probability = _kernel()(
            model.states, model.pointers, model.log_probabilities, self.chain_log, self.observation_model.pointers,
            np.ascontiguousarray(self.observation_model.log_densities(observations), dtype=np.float64),
            initial, self.searched, self.slot)
        if not np.isfinite(log_probability):
            warnings.warn("-inf log probability during Viterbi decoding cannot find a valid path", RuntimeWarning)
        return path, float(log_probability)


def compile_tracker(tracker: Any) -> Any:
    """A madmom DBN tracker with its HMMs decoded by CompiledHMM (same beats, less time and memory)."""
    _kernel()
    tracker.hmms = [CompiledHMM(hmm) for hmm in tracker.hmms]
    return tracker
