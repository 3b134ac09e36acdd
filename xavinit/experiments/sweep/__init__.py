"""``xavinit sweep``: the paper's Table 1 protocol as one resumable command.

The grid is datasets x activations x schemes x learning rates x seeds. Every point is one
``train`` run (:func:`xavinit.experiments.train.run_train` with one scheme and one activation,
so a run has exactly train's fields), executed where :mod:`xavinit.executors` sends it: a pool
of local worker processes, or a Dask cluster. Each model (dataset, activation, scheme) gets the
learning rate with the lowest validation error (mean over seeds), as the paper chose its rates
(section 2.3); at that rate the test error over the seeds is the model's cell of Table 1. With
``select_at`` the rate is chosen after that many updates and only the chosen rate's runs train
on to ``updates``.

The sweep's folder holds everything, so running the same command again resumes it::

    DIR/grid.yaml                the grid's settings (:func:`grid_settings`), as last run
    DIR/manifest.json            every run's status, updates, retries, worker, wall time and the
                                 validation error its learning rate was chosen on
    DIR/runs/ID/checkpoint.npz   the run's whole state at its last evaluation (train's format)
    DIR/runs/ID/result.json      the run's ``train`` result once it finished or diverged
    DIR/runs/ID/selection.json   with ``select_at``: the run's result at that point, kept when
                                 the chosen rate trains on (its validation error chose the rate)
    DIR/runs/ID/attempts.json    how often this invocation started the run (bounds retries)

A finished run is skipped; an interrupted one continues from its checkpoint, bit-identical to an
uninterrupted run (a run's result depends on its grid point only: same code, one BLAS thread,
seeded streams); a larger ``updates`` continues finished runs from their last state, identical
to a run trained with the larger budget from the start, since ``updates`` is a multiple of the
evaluation and tracking intervals. A grid that changes anything else of a run already trained
(:data:`.grid.COMPARED`) is refused, naming the setting.

What a sweep reports comes from its runs' results, never from the manifest's account of them:
each run's result must be its grid point's (scheme, activation, rate), its final test error
its curve's last (:mod:`xavinit.core.evidence`), its curve and tracked statistics the ones its
checkpoint recorded for the same updates (:func:`.manifest.same_history`), and the file the
one this sweep wrote (the manifest keeps each result file's SHA-256 beside the update it was
written at); the validation error a rate is chosen on is read from the run's result at the
selection point every time, and the manifest's record of it must agree. A folder that fails
one of these is refused, naming the file and the field (a hand-edited or damaged folder; move
the run's folder away to train it again). The manifest's ``wall_seconds``, ``worker`` and
``retries`` say how runs ran and are reported as recorded.

Faults: Ctrl-C (SIGINT) asks every active run to checkpoint and return, then raises
:class:`SweepInterrupted`; a run whose worker dies is started again from its last checkpoint,
at most ``retries`` times (recorded per run); a diverged run is final and never retried.

The package, in the order a run meets it: :mod:`.grid` (points, run ids, each run's train
configuration, what resume compares, ``grid.yaml``), :mod:`.manifest` (the folder's files),
:mod:`.worker` (one run on a worker), :mod:`.selection` (the learning rate and Table 1),
:mod:`.coordinator` (one invocation: read, schedule, record, gather).
"""

from xavinit.experiments.sweep.coordinator import (
    SweepCoordinator,
    SweepInterrupted,
    SweepProgress,
    SweepStatus,
    run_sweep,
)
from xavinit.experiments.sweep.grid import (
    GRID_FILE,
    Point,
    grid_points,
    grid_settings,
    run_id,
    train_mapping,
)
from xavinit.experiments.sweep.selection import choose_rate, sweep_table

__all__ = [
    "GRID_FILE",
    "Point",
    "SweepCoordinator",
    "SweepInterrupted",
    "SweepProgress",
    "SweepStatus",
    "choose_rate",
    "grid_points",
    "grid_settings",
    "run_id",
    "run_sweep",
    "sweep_table",
    "train_mapping",
]
