"""The numeric core: numpy (and array-api-compat) only, no command line, no rendering.

Schemes and their verification (:mod:`.schemes`, :mod:`.checks`, :mod:`.stats`), activations
and mean-field theory (:mod:`.activations`, :mod:`.theory`), networks and training
(:mod:`.network`, :mod:`.sgd`), the per-tensor verdicts of ``check`` (:mod:`.matrixscan`,
:mod:`.spectrum`, :mod:`.roles`, :mod:`.verdicts`, :mod:`.evidence`), the random streams
(:mod:`.streams`), the array backends (:mod:`.backends`) and the optional probe of a user's
own model (:mod:`.modelprobe`). ``tests/test_architecture.py`` keeps its imports to numpy, the
standard library and the leaves (errors, limits, specs, text, fileio).
"""
