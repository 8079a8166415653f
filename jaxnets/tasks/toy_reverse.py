"""Toy sequence-to-sequence: reverse a string of L digits, read out by greedy decoding.

Proof that a captioner fits the driver unchanged: batches ``{"tokens": int32 (R, 2L + 1)}`` =
``[d_1 .. d_L, SEP, d_L .. d_1]``; a causal TCN (this project's, :mod:`jaxnets.models.tcn`) reads
the one-hot tokens and predicts the next one; the loss is token-level cross-entropy on the L
answer tokens (teacher forcing); the evaluator decodes greedily from ``[d, SEP]`` and reports
exact-match and token accuracy; selection by validation exact-match.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.data.batches import ArraySource, eval_batches
from jaxnets.models.tcn import TCN, exponential
from jaxnets.registry import TASKS
from jaxnets.train import schema
from jaxnets.train.state import variables_of
from jaxnets.train.step import make_sum_step, sum_over_batches

SEP, VOCAB = 10, 11


def make_strings(n: int, length: int, seed: int, split: int) -> dict[str, np.ndarray]:
    """n random digit strings, each as ``[d, SEP, reversed d]``; split 0 (train) avoids split 1's strings."""
    rng = np.random.default_rng((seed, split))
    digits = rng.integers(0, 10, (n, length))
    if split == 0:  # drop the strings the validation split holds
        held = {tuple(r) for r in make_strings(4096, length, seed, 1)["tokens"][:, :length]}
        digits = np.array([r for r in digits if tuple(r) not in held])
    tokens = np.concatenate([digits, np.full((len(digits), 1), SEP), digits[:, ::-1]], 1)
    return {"tokens": tokens.astype(np.int32)}


@dataclasses.dataclass(eq=False)
class ToyReverse:
    model: Any
    train_data: ArraySource
    val: dict
    length: int
    mesh: Any
    selection = ("validation/exact_match", "max")
    final_evaluators = {}

    def __post_init__(self):
        self.evaluators, self._sums = {"validation": self}, make_sum_step(self.sums, self.mesh)

    def example_batch(self):
        return {k: v[:1] for k, v in self.val.items()}

    def logits(self, variables, tokens, train=False, rng=None):  # tokens (R, T) -> (R, T, VOCAB)
        x = jax.nn.one_hot(tokens, VOCAB, axis=1)  # (R, VOCAB, T)
        return self.model.apply(variables, x, train, rngs={"dropout": rng} if rng is not None else {}).transpose(0, 2, 1)

    def init(self, rngs, batch):
        return self.model.init(rngs, jax.nn.one_hot(batch["tokens"][:, :-1], VOCAB, axis=1))

    def loss_fn(self, params, model_state, batch, rng, train):
        tokens, n = batch["tokens"], self.length
        z = self.logits({"params": params}, tokens[:, :-1], train, rng)[:, n:]  # (R, L, VOCAB): predicts tokens n+1..
        logp = jax.nn.log_softmax(z)
        target = tokens[:, n + 1 :]  # (R, L)
        loss = -jnp.mean(jnp.take_along_axis(logp, target[..., None], -1))
        return loss, {"token_accuracy": jnp.mean(jnp.argmax(z, -1) == target)}, model_state

    def decode(self, variables, prompt):  # prompt (R, L + 1) -> greedy answer (R, L)
        n = self.length
        seq = jnp.concatenate([prompt, jnp.zeros((prompt.shape[0], n - 1), prompt.dtype)], 1)  # (R, 2L)

        answer = []
        for i in range(n):
            nxt = jnp.argmax(self.logits(variables, seq)[:, n + i], -1).astype(seq.dtype)
            answer.append(nxt)
            if i < n - 1:
                seq = seq.at[:, n + i + 1].set(nxt)
        return jnp.stack(answer, 1)

    def sums(self, state, batch):
        n, m = self.length, batch["mask"]
        guess = self.decode(variables_of(state), batch["tokens"][:, : n + 1])
        right = guess == batch["tokens"][:, n + 1 :]  # (R, L)
        return {"exact": jnp.sum(jnp.all(right, 1) * m), "tokens": jnp.sum(jnp.mean(right, 1) * m), "n": jnp.sum(m)}

    def run(self, state):
        s = sum_over_batches(self._sums, state, eval_batches(self.val, 128), self.mesh)
        return {"exact_match": s["exact"] / s["n"], "token_accuracy": s["tokens"] / s["n"]}


SCHEMA = [schema.Field("data.train_size", "int", lambda v: v >= 1, ">= 1"),
          schema.Field("data.validation_size", "int", lambda v: v >= 1, ">= 1"),
          schema.Field("data.length", "int", lambda v: 1 <= v <= 32, "in [1, 32]"),
          schema.Field("model.num_blocks", "int", lambda v: 1 <= v <= 12, "in [1, 12]"),
          schema.Field("model.channels", "int", lambda v: 1 <= v <= 1024, "in [1, 1024]"),
          schema.Field("model.kernel_size", "int", lambda v: 2 <= v <= 16, "in [2, 16]")]


@TASKS.register("toy_reverse")
def make_toy_reverse(config, mesh) -> ToyReverse:
    schema.check(config, SCHEMA)
    d, mc = config.data, config.model
    train = make_strings(d.train_size, d.length, config.seed, 0)
    source = ArraySource(train, config.batch_size, config.seed, summary=f"{len(train['tokens'])} digit strings")
    tcn = TCN(block="single", num_blocks=mc.num_blocks, channels=mc.channels, kernel_size=mc.kernel_size,
              dilations=exponential(mc.num_blocks), dropout=0.0, num_classes=VOCAB, head="linear")
    return ToyReverse(tcn, source, make_strings(d.validation_size, d.length, config.seed, 1), d.length, mesh)
