"""madmom's downbeat network ensemble, evaluated with all networks stepped together.

madmom evaluates its 8 bidirectional LSTM networks one after another, one time step of one
direction at a time: ~50 small numpy calls per frame per network, so Python overhead, not
arithmetic, dominates (~11x realtime). The networks share one architecture, so here the 16 LSTMs
of a layer (8 networks x 2 directions) advance together: input projections for all frames are one
matrix product, and each time step is a handful of batched numpy calls on preallocated arrays.
Same weights, same equations (peephole LSTM, madmom's gate order, activations and order of
additions), same result up to float32 rounding; tests compare it with madmom's own processor.

A long track is evaluated in chunks (`DownbeatNetwork.chunk`): the forward LSTMs carry their
state from one chunk to the next, which is exact (a forward LSTM at frame t depends only on
frames up to t), so only the backward direction needs context past a chunk's end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Carry:
    """The forward LSTMs' output and cell state per layer after a chunk's last kept frame."""
    previous: list[np.ndarray]
    state: list[np.ndarray]


class BatchedEnsemble:
    """Averaged activations of a madmom NeuralNetworkEnsemble of identical BLSTM networks."""

    def __init__(self, networks: list[Any]) -> None:
        from madmom.ml.nn.activations import sigmoid, tanh

        self.layers: list[dict[str, np.ndarray]] = []
        depth = len(networks[0].layers) - 1  # recurrent layers; the last is the softmax layer
        gates = ("input_gate", "forget_gate", "cell", "output_gate")
        # the sigmoid gates' weights are stored negated (see _run); the cell input's are not
        size = networks[0].layers[0].fwd_layer.cell.bias.size
        sign = np.repeat(np.array([-1, -1, 1, -1], dtype=np.float32), size)
        for index in range(depth):
            lstms = [direction for net in networks
                     for direction in (net.layers[index].fwd_layer, net.layers[index].bwd_layer)]
            for lstm in lstms:  # the equations below are madmom's LSTM with these activations
                assert [getattr(lstm, g).activation_fn for g in gates] == [sigmoid, sigmoid, tanh, sigmoid]
                assert lstm.activation_fn == tanh and lstm.cell.weights.dtype == np.float32
            self.layers.append({
                "W": np.stack([np.concatenate([getattr(l, g).weights for g in gates], axis=1) for l in lstms]) * sign,
                "R": np.stack([np.concatenate([getattr(l, g).recurrent_weights for g in gates], axis=1)
                               for l in lstms]) * sign,
                "b": np.stack([np.concatenate([getattr(l, g).bias for g in gates]) for l in lstms]) * sign,
                "peep_i": -np.stack([l.input_gate.peephole_weights for l in lstms]),
                "peep_f": -np.stack([l.forget_gate.peephole_weights for l in lstms]),
                "peep_o": -np.stack([l.output_gate.peephole_weights for l in lstms]),
            })
        self.out_W = np.stack([net.layers[-1].weights for net in networks])
        self.out_b = np.stack([net.layers[-1].bias for net in networks])
        self.networks = len(networks)

    def __call__(self, features: np.ndarray, carry: Carry | None = None,
                 carry_at: int | None = None) -> tuple[np.ndarray, Carry | None]:
        """features (frames, inputs) -> (averaged network outputs (frames, classes), carry).

        `carry` starts the forward LSTMs from a previous chunk's state (zeros without it; the
        backward LSTMs always start from zeros at the last frame); with `carry_at`, the forward
        LSTMs' state after frame carry_at - 1 is returned for the next chunk.
        """
        frames = len(features)
        inputs = np.asarray(features, dtype=np.float32)[None]  # per network (networks, frames, inputs)
        carried = Carry([], [])
        for index, layer in enumerate(self.layers):
            lstms, size_in, four_h = layer["W"].shape
            size = four_h // 4
            # x.W + b for all frames, laid out as the recurrence reads them: (frames, gate, lstm, H).
            # The first layer's input is shared: one product for all LSTMs, its weight columns in
            # that order already. Later layers read their own network's outputs: one product per
            # network (both directions), then one transposition.
            if len(inputs) == 1:
                weights = layer["W"].reshape(lstms, size_in, 4, size).transpose(1, 2, 0, 3).reshape(size_in, -1)
                steps = (inputs[0] @ weights).reshape(frames, 4, lstms, size)
            else:
                networks = len(inputs)
                weights = layer["W"].reshape(networks, 2, size_in, four_h).transpose(0, 2, 1, 3)
                projected = np.matmul(inputs, weights.reshape(networks, size_in, 2 * four_h))
                steps = np.ascontiguousarray(
                    projected.reshape(networks, frames, 2, 4, size).transpose(1, 3, 0, 2, 4)).reshape(frames, 4, lstms, size)
            steps += layer["b"].reshape(lstms, 4, size).transpose(1, 0, 2)
            steps[:, :, 1::2] = steps[::-1, :, 1::2]  # backward LSTMs read time reversed
            start = (carry.previous[index], carry.state[index]) if carry is not None else None
            hidden, after = self._run(steps, layer, start, carry_at)  # (frames, lstms, H)
            if after is not None:
                carried.previous.append(after[0])
                carried.state.append(after[1])
            # per network (networks, frames, 2H): forward outputs, then backward ones in time order
            inputs = np.concatenate([hidden[:, 0::2], hidden[::-1, 1::2]], axis=2).transpose(1, 0, 2)
        logits = np.matmul(inputs, self.out_W) + self.out_b[:, None, :]
        logits -= logits.max(axis=2, keepdims=True)
        probabilities = np.exp(logits)
        probabilities /= probabilities.sum(axis=2, keepdims=True)
        assert probabilities.shape[1] == frames
        return probabilities.mean(axis=0), (carried if carry_at is not None else None)

    def _run(self, steps: np.ndarray, layer: dict[str, np.ndarray], start: tuple[np.ndarray, np.ndarray] | None,
             carry_at: int | None) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
        """The recurrence of all LSTMs of a layer over `steps` (frames, gate, lstm, H: x.W + b,
        backward LSTMs time reversed), one time step per iteration: (outputs (frames, lstms, H),
        the forward LSTMs' (output, state) after frame carry_at - 1 if asked).

        Python overhead per numpy call is the cost here, and transcendental functions (scipy's
        expit, madmom's sigmoid: ~10 ns an element): every array the loop touches is allocated
        once and updated in place, laid out gate by gate so most calls see one contiguous block;
        the input and forget gates share their calls, and the sigmoid is 1 / (1 + exp(-x)) with
        numpy's vectorised exp, the sign folded into the sigmoid gates' weights (`layer` holds
        them negated: exact). Additions in madmom's order: (x.W + b) + peephole * state + h.R.
        """
        frames, _, lstms, size = steps.shape
        four_h = 4 * size
        recurrent = layer["R"]
        peep_if = np.stack([layer["peep_i"], layer["peep_f"]])  # (2, lstms, H)
        peep_o = layer["peep_o"]
        exp, tanh, multiply, add, divide, matmul = np.exp, np.tanh, np.multiply, np.add, np.divide, np.matmul
        hidden = np.empty((frames, lstms, size), dtype=np.float32)
        state = np.zeros((lstms, size), dtype=np.float32)
        previous = np.zeros((lstms, size), dtype=np.float32)
        if start is not None:  # the forward LSTMs (even rows) go on from the previous chunk
            previous[0::2], state[0::2] = start
        product = np.empty((lstms, 1, four_h), dtype=np.float32)
        product_gates = product.reshape(lstms, 4, size).transpose(1, 0, 2)  # a gate-major view
        product_ifc, product_o = product_gates[:3], product_gates[3]
        z = np.empty((4, lstms, size), dtype=np.float32)
        input_forget, input_gate, forget_gate, cell, output_gate, z_ifc = z[:2], z[0], z[1], z[2], z[3], z[:3]
        peephole = np.zeros((3, lstms, size), dtype=np.float32)  # the cell input has none: its row stays 0
        peephole_if = peephole[:2]
        one = np.float32(1)
        after = None
        begin = 0
        with np.errstate(over="ignore"):  # exp(-x) overflows to inf for very negative inputs: sigmoid 0, as expit
            for stop in ([carry_at] if carry_at is not None else []) + [frames]:
                for t in range(begin, stop):
                    step = steps[t]
                    matmul(previous[:, None, :], recurrent, out=product)
                    multiply(state, peep_if, out=peephole_if)
                    add(step[:3], peephole, out=z_ifc)
                    add(z_ifc, product_ifc, out=z_ifc)
                    exp(input_forget, out=input_forget)
                    add(input_forget, one, out=input_forget)
                    divide(one, input_forget, out=input_forget)  # sigmoid (of the negated inputs)
                    tanh(cell, out=cell)
                    multiply(cell, input_gate, out=cell)
                    multiply(state, forget_gate, out=state)
                    add(state, cell, out=state)
                    multiply(state, peep_o, out=output_gate)  # the new cell state through the peephole
                    add(step[3], output_gate, out=output_gate)
                    add(output_gate, product_o, out=output_gate)
                    exp(output_gate, out=output_gate)
                    add(output_gate, one, out=output_gate)
                    divide(one, output_gate, out=output_gate)
                    previous = hidden[t]
                    tanh(state, out=previous)
                    multiply(previous, output_gate, out=previous)
                if stop == carry_at:
                    after = (previous[0::2].copy(), state[0::2].copy())
                begin = stop
        return hidden, after


class DownbeatNetwork:
    """A drop-in for madmom's RNNDownBeatProcessor (beat and downbeat activations of a signal at
    44.1 kHz): its pre-processing with one FFT call per block of frames (etl/dsp/spectra.py), the
    batched ensemble, and chunked evaluation for long tracks."""

    def __init__(self) -> None:
        from madmom.features.downbeats import RNNDownBeatProcessor

        from etl.dsp import spectra

        reference = RNNDownBeatProcessor()
        pre_processor, ensemble, _ = reference.processors
        self.sample_rate = 44100  # madmom's SignalProcessor rate for these networks
        self.bands = spectra.bands_of(pre_processor, self.sample_rate)
        self.hop_size = self.bands[0].hop_size
        self.ensemble = BatchedEnsemble(ensemble.processors[0].processors)

    def features(self, signal: np.ndarray) -> np.ndarray:
        from etl.dsp import spectra

        return spectra.features(signal, self.bands)

    def __call__(self, signal: Any) -> np.ndarray:
        """madmom's activations (frames, [beat, downbeat]) of a whole mono signal at 44.1 kHz."""
        activations, _ = self.chunk(np.asarray(signal), 0, None, None)
        return activations

    def chunk(self, signal: np.ndarray, skip_frames: int, carry: Carry | None,
              carry_at: int | None) -> tuple[np.ndarray, Carry | None]:
        """Activations of one chunk of a track: `signal` starts `skip_frames` frames before the
        chunk (context for the spectra's windows and differences, not evaluated) and runs to its
        end; `carry` and `carry_at` as BatchedEnsemble (frames counted from the chunk's start)."""
        probabilities, after = self.ensemble(self.features(signal)[skip_frames:], carry, carry_at)
        return np.delete(probabilities, 0, axis=1), after  # beat, downbeat (as madmom's processor)


def downbeat_processor() -> DownbeatNetwork:
    """madmom's RNNDownBeatProcessor, the batched way (see DownbeatNetwork)."""
    return DownbeatNetwork()
