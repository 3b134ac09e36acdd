"""One module per command: config in, result out; numpy only, no printing."""

from collections.abc import Callable

Progress = Callable[[int, int, str], None]
"""``progress(done, total, what)``, called as work advances (the CLI draws a bar with it)."""
