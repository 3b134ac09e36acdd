"""``python -m xavinit`` and the ``xavinit`` command (:func:`run`)."""

import gc
import sys


def run() -> None:
    """The command line as a process: :func:`xavinit.cli.main`, its code the exit status.

    The cyclic garbage collector is off while the process starts (typer, pydantic's option
    models, the result types: tens of thousands of long-lived objects that each collection
    would walk again and find alive, about 20 ms of a 0.4 s start) and back on once the
    command starts its work (:func:`xavinit.cli.run.execute`).
    """
    gc.disable()
    from xavinit.cli import main

    sys.exit(main())


if __name__ == "__main__":
    run()
