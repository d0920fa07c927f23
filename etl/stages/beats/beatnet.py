"""madmom's downbeat network ensemble, evaluated with all networks stepped together.

madmom evaluates its 8 bidirectional LSTM networks one after another, one time step of one
direction at a time: ~50 small numpy calls per frame per network, so Python overhead, not
arithmetic, dominates (~11x realtime). The networks share one architecture, so here the 16 LSTMs
of a layer (8 networks x 2 directions) advance together: input projections for all frames are one
matrix product, and each time step is a handful of batched numpy calls. Same weights, same
equations (peephole LSTM, madmom's gate order and activations), same result up to float32
rounding; tests compare it with madmom's own processor.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class BatchedEnsemble:
    """Averaged activations of a madmom NeuralNetworkEnsemble of identical BLSTM networks."""

    def __init__(self, networks: list[Any]) -> None:
        from scipy.special import expit

        self._sigmoid = expit
        self.layers: list[dict[str, np.ndarray]] = []
        depth = len(networks[0].layers) - 1  # recurrent layers; the last is the softmax layer
        for index in range(depth):
            lstms = [direction for net in networks
                     for direction in (net.layers[index].fwd_layer, net.layers[index].bwd_layer)]
            gates = ("input_gate", "forget_gate", "cell", "output_gate")
            self.layers.append({
                "W": np.stack([np.concatenate([getattr(l, g).weights for g in gates], axis=1) for l in lstms]),
                "R": np.stack([np.concatenate([getattr(l, g).recurrent_weights for g in gates], axis=1)
                               for l in lstms]),
                "b": np.stack([np.concatenate([getattr(l, g).bias for g in gates]) for l in lstms]),
                "peep_i": np.stack([l.input_gate.peephole_weights for l in lstms]),
                "peep_f": np.stack([l.forget_gate.peephole_weights for l in lstms]),
                "peep_o": np.stack([l.output_gate.peephole_weights for l in lstms]),
            })
        self.out_W = np.stack([net.layers[-1].weights for net in networks])
        self.out_b = np.stack([net.layers[-1].bias for net in networks])
        self.networks = len(networks)

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """features (frames, inputs) -> averaged network outputs (frames, classes)."""
        frames = len(features)
        # layer input per network: (networks, frames, inputs); the first layer shares one input
        inputs = np.asarray(features, dtype=np.float32)[None]
        for layer in self.layers:
            lstms = layer["W"].shape[0]
            source = np.repeat(np.arange(lstms // 2), 2) if len(inputs) > 1 else np.zeros(lstms, dtype=int)
            projected = np.matmul(inputs[source], layer["W"]) + layer["b"][:, None, :]  # (lstms, frames, 4H)
            projected[1::2] = projected[1::2, ::-1]  # backward LSTMs read time reversed
            hidden = self._run(projected, layer)
            hidden[1::2] = hidden[1::2, ::-1]
            inputs = np.concatenate([hidden[0::2], hidden[1::2]], axis=2)  # (networks, frames, 2H)
        logits = np.matmul(inputs, self.out_W) + self.out_b[:, None, :]
        logits -= logits.max(axis=2, keepdims=True)
        probabilities = np.exp(logits)
        probabilities /= probabilities.sum(axis=2, keepdims=True)
        assert probabilities.shape[1] == frames
        return probabilities.mean(axis=0)

    def _run(self, projected: np.ndarray, layer: dict[str, np.ndarray]) -> np.ndarray:
        lstms, frames, four_h = projected.shape
        size = four_h // 4
        recurrent, peep_i, peep_f, peep_o = layer["R"], layer["peep_i"], layer["peep_f"], layer["peep_o"]
        sigmoid, tanh = self._sigmoid, np.tanh
        hidden = np.zeros((lstms, frames, size), dtype=np.float32)
        previous = np.zeros((lstms, 1, size), dtype=np.float32)
        state = np.zeros((lstms, size), dtype=np.float32)
        for t in range(frames):
            z = projected[:, t] + np.matmul(previous, recurrent)[:, 0]
            input_gate = sigmoid(z[:, :size] + state * peep_i)
            forget_gate = sigmoid(z[:, size:2 * size] + state * peep_f)
            state = tanh(z[:, 2 * size:3 * size]) * input_gate + state * forget_gate
            output_gate = sigmoid(z[:, 3 * size:] + state * peep_o)
            out = tanh(state) * output_gate
            hidden[:, t] = out
            previous = out[:, None, :]
        return hidden


def downbeat_processor() -> Any:
    """A drop-in for madmom's RNNDownBeatProcessor: its pre-processing, the batched ensemble."""
    from madmom.features.downbeats import RNNDownBeatProcessor

    reference = RNNDownBeatProcessor()
    pre_processor, ensemble, _ = reference.processors
    networks = ensemble.processors[0].processors
    batched = BatchedEnsemble(networks)

    def activations(signal: Any) -> np.ndarray:
        return np.delete(batched(pre_processor(signal)), 0, axis=1)  # beat, downbeat (as madmom)

    return activations
