"""Domain errors. The CLI turns them into one-line messages and exit codes at its boundary."""


class XavinitError(ValueError):
    """Bad input: a wrong spec, option, config or file. The CLI exits 2 with the message."""


class ResourceError(XavinitError):
    """A request that cannot be met on this machine (for example, too large for its memory)."""
