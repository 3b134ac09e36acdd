"""Start-up: what a shell user waits for, as a ratio to importing numpy, typer and rich.

Every help screen (the root's, each command's, ``data preview``'s), usage errors, ``schemes``
and a small ``init`` against ``python -c "import numpy, typer, rich"``; ``check`` of a file
holding one 8x8 tensor against ``python -c "import numpy"`` (issue 19: what a run costs above
reading the file). Whole processes, each case right after its own yardstick, all in turn in
every round (interleaved): medians and the median of each pair's ratio, the load average
beside them.

python bench/bench_startup.py [ROUNDS]
"""

from __future__ import annotations

import json
import statistics
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import interleaved_times, load_average, median_ratio

from xavinit.cli.declared import COMMAND_LINES

FLOOR = ["-c", "import numpy, typer, rich"]
NUMPY = ["-c", "import numpy"]


def tiny_safetensors(folder: Path) -> Path:
    """A safetensors file of one 8x8 float32 tensor (the format written out by hand: an 8-byte
    header length, the JSON header, the bytes)."""
    data = struct.pack("<64f", *(((i * 37) % 17 - 8) / 40 for i in range(64)))
    header = json.dumps({"w": {"dtype": "F32", "shape": [8, 8], "data_offsets": [0, 256]}})
    path = folder / "tiny.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header.encode() + data)
    return path


def cases(folder: Path) -> dict[str, tuple[list[str], list[str]]]:
    """``label -> (xavinit's words, the yardstick's)``."""
    out = {
        f"{(path + ' --help').strip()}": ([*path.split(), "--help"], FLOOR)
        for path in COMMAND_LINES
    }
    out["init --layers x (config error)"] = (["init", "--layers", "x"], FLOOR)
    out["init --no-such (usage error)"] = (["init", "--no-such"], FLOOR)
    out["schemes"] = (["schemes"], FLOOR)
    out["init --layers 64,32,10 -q"] = (["init", "--layers", "64,32,10", "-q"], FLOOR)
    tiny = str(tiny_safetensors(folder))
    out["check tiny.safetensors -q -f json"] = (["check", tiny, "-q", "-f", "json"], NUMPY)
    return out


def main(rounds: int) -> None:
    def run(words: list[str]) -> None:
        subprocess.run([sys.executable, *words], capture_output=True, check=False)

    with tempfile.TemporaryDirectory() as folder:
        table = cases(Path(folder))
        calls = {}
        for label, (words, yardstick) in table.items():  # each case right after its yardstick
            calls[f"yardstick of {label}"] = lambda yardstick=yardstick: run(yardstick)
            calls[label] = lambda words=words: run(["-m", "xavinit", *words])
        times = interleaved_times(calls, rounds)
    print(f"{rounds} rounds, interleaved; load average {load_average()}")
    floors = [
        t for label, (_, y) in table.items() if y is FLOOR for t in times[f"yardstick of {label}"]
    ]
    numpys = [
        t for label, (_, y) in table.items() if y is NUMPY for t in times[f"yardstick of {label}"]
    ]
    print(f"{'floor: import numpy, typer, rich':<44} {statistics.median(floors):.3f} s")
    print(f"{'import numpy':<44} {statistics.median(numpys):.3f} s")
    for label, (_, yardstick) in table.items():
        name = "floor" if yardstick is FLOOR else "import numpy"
        seconds = statistics.median(times[label])
        ratio = median_ratio(times[label], times[f"yardstick of {label}"])
        print(f"xavinit {label:<36} {seconds:.3f} s  {ratio:.2f}x {name}")
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 11)
