"""Reproduce the paper's Shapeset-3x2 experiments with ``xavinit train`` (docs/reproducing.md).

Trains the paper's 1024 -> 5 x 1000 -> 9 network on Shapeset-3x2 with tanh/standard,
tanh/normalized, softsign/standard and sigmoid/standard (plain SGD, batch 10, NLL, learning
rate 0.03), then prints the measured test errors beside the paper's Table 1 and the sigmoid
network's per-layer activation means over training (the paper's figure 2).

    python bench/reproduce_paper.py --updates 40000 --out repro/   # about 30 minutes here
    python bench/reproduce_paper.py --report repro/                # print the tables again

Each group is checkpointed every --eval-every updates into OUT, and resumes from its checkpoint
when run again, so an interrupted reproduction loses at most one evaluation interval.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from xavinit.cli import main as cli

GROUPS = {
    "tanh": ["-a", "tanh", "-s", "standard", "-s", "normalized"],
    "softsign": ["-a", "softsign", "-s", "standard"],
    "sigmoid": ["-a", "sigmoid", "-s", "standard"],
}

TABLE_1 = {  # Glorot and Bengio (2010), Table 1, Shapeset column, test error %
    ("standard", "softsign"): 16.27,
    ("normalized", "softsign"): 16.06,
    ("standard", "tanh"): 27.15,
    ("normalized", "tanh"): 15.60,
    ("standard", "sigmoid"): 82.61,
}


def run_group(name: str, args: argparse.Namespace) -> None:
    out = Path(args.out)
    result, checkpoint = out / f"{name}.json", out / f"{name}.ckpt.npz"
    if result.exists():
        print(f"{name}: {result} exists, skipping", file=sys.stderr)
        return
    if checkpoint.exists():
        argv = ["train", "--resume", str(checkpoint)]
    else:
        argv = [
            "train", "--dataset", "shapeset", "--depth", "5", "--width", "1000",
            *GROUPS[name], "--lr", str(args.lr), "--updates", str(args.updates),
            "--eval-every", str(args.eval_every), "--track-every", str(args.track_every),
            "--test-size", str(args.test_size), "--checkpoint", str(checkpoint),
            "--seed", str(args.seed),
        ]  # fmt: skip
    start = time.perf_counter()
    code = cli([*argv, "-o", str(result), "-q"])
    print(f"{name}: exit {code} in {time.perf_counter() - start:.0f} s", file=sys.stderr)


def report(out: Path) -> None:
    from xavinit.results import load_result

    print("| activation | init | updates | test error (ours) | Table 1 (paper) |")
    print("|---|---|---|---|---|")
    runs = []
    for name in GROUPS:
        path = out / f"{name}.json"
        if path.exists():
            runs += load_result(path).runs
    for run in runs:
        paper = TABLE_1.get((run.scheme, run.activation))
        ours = "diverged" if run.diverged else f"{100 * run.final_test_error:.1f}%"
        print(f"| {run.activation} | {run.scheme} | {run.updates} | {ours} | {paper}% |")
    for run in runs:
        if run.activation != "sigmoid":
            continue
        print("\nSigmoid/standard: mean activation per hidden layer on 300 test examples")
        layers = sorted({row["layer"] for row in run.layer_stats})
        print("| update | " + " | ".join(f"layer {k}" for k in layers) + " |")
        print("|---" * (len(layers) + 1) + "|")
        updates = sorted({row["update"] for row in run.layer_stats})
        keep = [u for u in updates if u in (0, 500, 1000, 2000, 5000) or u % 10000 == 0]
        keep = keep or updates
        for update in keep:
            means = {r["layer"]: r["mean"] for r in run.layer_stats if r["update"] == update}
            print(f"| {update} | " + " | ".join(f"{means[k]:.3f}" for k in layers) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=40_000)
    parser.add_argument("--lr", type=float, default=0.03)
    parser.add_argument("--eval-every", type=int, default=2500)
    parser.add_argument("--track-every", type=int, default=500)
    parser.add_argument("--test-size", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="repro")
    parser.add_argument("--report", metavar="OUT", help="only print the tables from OUT")
    args = parser.parse_args()
    if args.report:
        report(Path(args.report))
        return
    Path(args.out).mkdir(parents=True, exist_ok=True)
    for name in GROUPS:
        run_group(name, args)
    report(Path(args.out))


if __name__ == "__main__":
    main()
