"""``xavinit gain``: the exact gains of each activation, and a check of each on a deep network.

The gains (forward, backward, fixed point), ``chi_1``, the phase and the depth scale come from
:func:`xavinit.core.theory.gain_theory`: Gaussian expectations by Gauss-Hermite quadrature split at
the activation's kinks, converged to 1e-10 by node doubling. PyTorch's ``calculate_gain``
value is put beside them (a table in :mod:`xavinit.core.activations`; torch is never imported).

``--check`` builds one network of ``depth`` hidden layers of ``width`` units with
``variance-scaling:mode=fan_in,distribution=normal,gain=G`` (``G`` the computed gain, times
``gain_scale``), feeds one example ``x ~ N(0, I / g^2)`` (``g`` the computed gain, so that the
first pre-activations are ``N(0, 1)`` as in the gains' definition) through it with
propagate's weights, inputs and forward pass, and measures the variance over units of each
hidden layer's activations; the check is the ratio ``Var[z^depth] / Var[z^1]``.

What the theory says about that ratio at finite width is a Monte-Carlo interval. For Gaussian
weights and one example the pre-activations of layer ``k + 1`` are, given layer ``k``, exactly
i.i.d. ``N(0, q^{k+1})`` with ``q^{k+1} = g^2 |z^k|^2 / n`` (and ``q^1 = chi^2_n / n``), so the
ratio has exactly the law of the scalar chain

    q^1 = chi^2_n / n,   z^k_j = f(sqrt(q^k) xi_{kj}),  xi i.i.d. N(0, 1),  q^{k+1} = g^2 mean_j (z^k_j)^2,

which costs ``width`` function values per layer instead of ``width^2`` weights. ``N``
replicas of it at the computed gain give ratios ``r_1..r_N``; a network ratio from the same law
falls outside ``[min r_i, max r_i]`` with probability exactly ``2 / (N + 1)`` (exchangeability),
so ``N = ceil(2 k / alpha) - 1`` for ``k`` activations makes ``alpha`` the family-wise
false-alarm rate (Bonferroni). At infinite width the ratio is 1; at finite width it spreads
(relu: about ``exp(+-0.7)`` at width 500), and where the fixed point ``q* = 1`` repels (gelu,
silu, mish: ``fixed_point_slope > 1``) the finite-width noise grows layer after layer, which
the chain reproduces too.

With ``--bias-var sb^2`` the theory is that of biases ``N(0, sb^2)`` (Poole et al., 2016): the
fixed-point gain ``sqrt((1 - sb^2) / E[f(z)^2])`` puts ``q* = 1``, and the check's network is
built at it with biases drawn from :func:`xavinit.core.streams.bias_rng`; the chain adds ``sb^2`` to
every ``q`` (see :func:`chain_ratios`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from xavinit.config import GainConfig
from xavinit.core.activations import Activation, get_activation
from xavinit.core.network import forward
from xavinit.core.sampling import draw_biases, draw_inputs, draw_weights
from xavinit.core.schemes import Scheme, get_scheme
from xavinit.core.stats import moments_and_sample
from xavinit.core.streams import chain_rng
from xavinit.core.theory import GainTheory, gain_theory
from xavinit.errors import XavinitError
from xavinit.experiments import Progress
from xavinit.limits import GAIN_CHECK_WORK
from xavinit.resources import require_memory
from xavinit.results import DepthCheck, GainResult, GainRow

CHAIN_CHUNK = 1 << 21
"""Values per chunk of the Monte-Carlo chain's draws (replicas x width): 16 MiB as float64."""

CHAIN_BLOCK = 1 << 16
"""Values per block of one activation's work on a chunk: 512 KiB as float64, in cache."""


def gain_row(theory: GainTheory) -> GainRow:
    """The result row of one activation's theory."""
    return GainRow(
        activation=theory.activation,
        forward_gain=theory.forward_gain,
        backward_gain=theory.backward_gain,
        fixed_point_gain=theory.fixed_point_gain,
        chi1=theory.chi1,
        torch_gain=theory.torch_gain,
        mean=theory.mean,
        second_moment=theory.second_moment,
        torch_ratio=theory.torch_ratio,
        fixed_point_slope=theory.fixed_point_slope,
        phase=theory.phase,
        correlation_fixed_point=theory.correlation_fixed_point,
        depth_scale=theory.depth_scale,
        nodes=theory.order,
        bias_var=theory.bias_var,
    )


def replicas_for(activations: int, alpha: float) -> int:
    """``N`` such that the range of ``N`` replicas misses a new draw with probability at most
    ``alpha / activations``: ``2 / (N + 1) <= alpha / k``."""
    return math.ceil(2 * activations / alpha) - 1


def chain_ratios(
    activation: Activation,
    gain: float,
    width: int,
    depth: int,
    replicas: int,
    rng: np.random.Generator,
    bias_var: float = 0.0,
) -> np.ndarray:
    """``replicas`` draws of ``Var[z^depth] / Var[z^1]`` (variances over the ``width`` units of
    one example) from the finite-width chain of the module docstring, at ``gain``, in float64.

    With biases ``N(0, sb^2)`` (``bias_var``) and ``gain^2 E[f(z)^2] = 1 - sb^2`` (the
    fixed-point gain) the chain starts at ``q^1 = (1 - sb^2) chi^2_n / n + sb^2`` and steps by
    ``q^{k+1} = gain^2 mean_j (z^k_j)^2 + sb^2``: given ``z^k`` the pre-activations
    ``z^k W_j + b_j`` are still i.i.d. ``N(0, q^{k+1})``.
    """
    return chains_ratios([(activation, gain)], width, depth, replicas, rng, bias_var)[0]


def chains_ratios(
    chains: Sequence[tuple[Activation, float]],
    width: int,
    depth: int,
    replicas: int,
    rng: np.random.Generator,
    bias_var: float = 0.0,
    progress: Progress | None = None,
) -> list[np.ndarray]:
    """:func:`chain_ratios` of each ``(activation, gain)``, all from one stream of draws: each
    list entry is exactly what :func:`chain_ratios` returns for that pair with a generator in
    ``rng``'s state (the chain's draws do not depend on the activation), and the ``chi^2`` and
    ``N(0, 1)`` values are drawn once for all of them instead of once each.

    The draws come in chunks of ``CHAIN_CHUNK // width`` replicas: per chunk ``q^1``'s
    ``chi^2_n``, then one ``(replicas, width)`` array of ``xi`` per layer. Each activation's
    work on a layer runs over blocks of ``CHAIN_BLOCK // width`` replicas, so that its
    temporaries stay in cache; every statistic is per replica (per row), so the blocks change
    no value.
    """
    ratios = [np.empty(replicas) for _ in chains]
    chunk = max(1, CHAIN_CHUNK // width)
    block = max(1, CHAIN_BLOCK // width)
    xi = np.empty((min(chunk, replicas), width))
    work = np.empty((min(block, replicas), width))
    for start in range(0, replicas, chunk):
        if progress is not None:
            progress(start, replicas, f"Monte-Carlo chain: replicas {start + 1}..")
        rows = min(chunk, replicas - start)
        q1 = rng.chisquare(width, size=rows) / width
        if bias_var:
            q1 = (1.0 - bias_var) * q1 + bias_var
        qs = [q1.copy() for _ in chains]
        firsts = [np.ones(rows) for _ in chains]
        m1, m2 = np.empty(rows), np.empty(rows)
        with np.errstate(all="ignore"):
            for k in range(depth):
                s = xi[:rows]
                rng.standard_normal(out=s)
                for c, (activation, gain) in enumerate(chains):
                    scale = np.sqrt(qs[c])
                    for lo in range(0, rows, block):
                        hi = min(lo + block, rows)
                        z = np.multiply(s[lo:hi], scale[lo:hi, None], out=work[: hi - lo])
                        z = activation.forward(z, out=z)
                        np.add.reduce(z, axis=1, out=m1[lo:hi])
                        np.einsum("ij,ij->i", z, z, out=m2[lo:hi])
                    m1 /= width  # z.mean(axis=1): the same sum over the same divisor
                    m2 /= width
                    var = np.maximum(m2 - m1 * m1, 0.0)
                    if k == 0:
                        firsts[c] = var
                    qs[c] = gain**2 * m2 + bias_var
                    if k == depth - 1:
                        ratios[c][start : start + rows] = var / firsts[c]
    return ratios


def check_memory(config: GainConfig) -> None:
    """Refuse a network whose weights would not fit in memory (float32: the unit draws and one
    network's scaled copy) beside the chain's buffers."""
    need = 2 * 4 * (config.depth + 1) * config.width * config.width + 8 * CHAIN_CHUNK * 3
    require_memory(need, f"--depth {config.depth} --width {config.width}", share=0.8)


def exact_gain(config: GainConfig, theory: GainTheory) -> float:
    """The gain the check is about: the fixed-point gain, which without biases is the forward
    gain (that one's exact value is kept)."""
    return theory.fixed_point_gain if config.bias_var else theory.forward_gain


def check_widths(config: GainConfig) -> tuple[int, ...]:
    """The check network's widths: ``depth`` hidden layers of ``width``, one output unit."""
    return (config.width,) * (config.depth + 1) + (1,)


def unit_weights(config: GainConfig) -> list[np.ndarray]:
    """The check network's weights before their scale: ``N(0, 1)`` float32 from the generators
    of propagate's layers, as ``variance-scaling`` with ``Var = 1`` (``scale = width = fan_in``)
    draws them. Every activation's network scales these same draws (one seed)."""
    unit = get_scheme(f"variance-scaling:mode=fan_in,distribution=normal,scale={config.width}")
    return draw_weights(unit, check_widths(config), config.seed, 0, np.dtype(np.float32))


def scaled_weights(scheme: Scheme, unit: Sequence[np.ndarray]) -> list[np.ndarray]:
    """A normal scheme's weights from the ``unit`` draws: its ``sample`` multiplies ``N(0, 1)``
    float32 draws by its std, so these are the weights it draws from the same generators, bit
    for bit (tests/test_gain.py), without drawing ``depth x width^2`` values per activation."""
    return [w * np.float32(scheme.std(*w.shape)) for w in unit]


def depth_check(
    config: GainConfig,
    activation: Activation,
    theory: GainTheory,
    theory_ratios: np.ndarray,
    unit: Sequence[np.ndarray],
) -> DepthCheck:
    """One network at ``gain_scale`` times the computed gain against the interval of the
    chain's ratios ``theory_ratios`` (:func:`chains_ratios`, at the computed gain); its
    weights are the ``unit`` draws (:func:`unit_weights`) times the scheme's std."""
    gain = exact_gain(config, theory) * config.gain_scale
    spec = f"variance-scaling:mode=fan_in,distribution=normal,gain={gain!r}"
    widths = check_widths(config)
    dtype = np.dtype(np.float32)
    weights = scaled_weights(get_scheme(spec), unit)
    biases = draw_biases(widths, config.bias_var, config.seed, 0, dtype)
    x = draw_inputs(config.seed, 0, 1, widths[0], "normal", dtype)
    x /= np.float32(theory.forward_gain)  # q^1 = exact^2 / forward_gain^2 + sb^2 = 1
    with np.errstate(all="ignore"):
        cache = forward(x, weights, biases, activation)
    variances = [moments_and_sample(z)[0].variance for z in cache.hidden]
    with np.errstate(all="ignore"):
        ratio = float(np.float64(variances[-1]) / variances[0]) if variances[0] > 0 else math.nan
    finite = theory_ratios[np.isfinite(theory_ratios)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, math.inf)
    return DepthCheck(
        activation=activation.spec,
        depth=config.depth,
        width=config.width,
        gain=gain,
        variance_ratio=ratio,
        interval=[low, high],
        passed=bool(math.isfinite(ratio) and low <= ratio <= high),
        scheme=spec,
        median_ratio=float(np.median(finite)) if finite.size else math.nan,
        replicas=int(theory_ratios.size),
        variances=[float(v) for v in variances],
    )


def run_gain(config: GainConfig, progress: Progress | None = None) -> GainResult:
    """Every activation's gains and, with ``check``, its depth check; ``passed`` is False when a
    check fails."""
    activations = [get_activation(spec) for spec in config.activations]
    theories = [gain_theory(act, config.bias_var) for act in activations]
    checks: list[DepthCheck] = []
    if config.check:
        check_memory(config)
        replicas = replicas_for(len(activations), config.alpha)
        work = replicas * config.depth * config.width * len(activations)
        if work > GAIN_CHECK_WORK:
            raise XavinitError(
                f"gain --check: --alpha {config.alpha:g} needs {float(replicas):.3g} replicas of the "
                f"{config.depth}-layer chain per activation ({work:.2g} activation values, "
                f"more than {GAIN_CHECK_WORK:.0g}: hours); raise --alpha or lower --depth, "
                "--width or the number of activations"
            )
        # The chain's draws are the same for every activation (one seed): drawn once for all.
        steps = replicas + len(activations)  # the chain by replicas, then one step a network
        chains = [
            (act, exact_gain(config, theory))
            for act, theory in zip(activations, theories, strict=True)
        ]

        def chain_progress(done: int, _replicas: int, what: str) -> None:
            if progress is not None:
                progress(done, steps, what)

        all_ratios = chains_ratios(
            chains, config.width, config.depth, replicas, chain_rng(config.seed),
            config.bias_var, chain_progress,
        )  # fmt: skip
        unit = unit_weights(config)
        for done, (act, theory, theory_ratios) in enumerate(
            zip(activations, theories, all_ratios, strict=True)
        ):
            if progress is not None:
                progress(replicas + done, steps, f"{act.spec}: depth {config.depth} network")
            checks.append(depth_check(config, act, theory, theory_ratios, unit))
        if progress is not None:
            progress(steps, steps, "done")
    document: dict[str, Any] = config.to_dict()
    return GainResult(
        seed=config.seed,
        config=document,
        passed=all(check["passed"] for check in checks),
        gains=[gain_row(theory) for theory in theories],
        depth_checks=checks,
    )
