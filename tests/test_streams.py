"""Every random stream keeps its SeedSequence spawn key (saved results and golden tests rely
on them), and no two streams of a run share one."""

from __future__ import annotations

import numpy as np
import pytest

from xavinit.core import streams


def _raw(seed: int, key: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key)).random(8)


@pytest.mark.parametrize(
    ("rng", "key"),
    [
        (lambda seed: streams.layer_rng(seed, 0, 1), (0, 1)),
        (lambda seed: streams.layer_rng(seed, 3, 7), (3, 7)),
        (lambda seed: streams.input_rng(seed, 2, streams.INPUT_KEY), (2, 0, 1)),
        (lambda seed: streams.input_rng(seed, 2, streams.LABEL_KEY), (2, 0, 2)),
        (streams.chain_rng, (0, 0, 3)),
        (lambda seed: streams.block_rng(seed, 5), (5,)),
        (lambda seed: streams.block_rng(seed, streams.VALID_KEY), (2**31 - 1,)),
        (lambda seed: streams.block_rng(seed, streams.TEST_KEY), (2**31 - 2,)),
        (streams.shuffle_rng, (7,)),
        (streams.digits_split_rng, (11,)),
    ],
)
@pytest.mark.parametrize("seed", [0, 12345])
def test_each_stream_keeps_its_spawn_key(rng, key, seed):
    np.testing.assert_array_equal(rng(seed).random(8), _raw(seed, key))


def test_streams_of_one_run_differ():
    draws = [
        streams.layer_rng(0, 0, 1).random(4),
        streams.layer_rng(0, 1, 1).random(4),
        streams.layer_rng(0, 0, 2).random(4),
        streams.input_rng(0, 0, streams.INPUT_KEY).random(4),
        streams.input_rng(0, 0, streams.LABEL_KEY).random(4),
        streams.chain_rng(0).random(4),
        streams.block_rng(0, 0).random(4),
        streams.block_rng(0, 1).random(4),
        streams.block_rng(0, streams.VALID_KEY).random(4),
        streams.block_rng(0, streams.TEST_KEY).random(4),
    ]
    assert len({tuple(d) for d in draws}) == len(draws)
