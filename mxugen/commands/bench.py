"""``mxugen bench``: benchmarks that print measured figures."""

from __future__ import annotations

import json

from ..options import UsageError, add_shape_options, command

EXAMPLES = ["mxugen bench gemm --rows 16 --cols 16 --m 256 --k 256 --n 256 --json"]


def register(commands) -> None:
    parser = command(commands, "bench", "benchmarks that print measured figures", EXAMPLES)
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    gemm = kinds.add_parser(
        "gemm", help="array utilization on one M×K×N GEMM, checked against the golden model")
    add_shape_options(gemm, default=16)
    gemm.add_argument("--m", type=int, default=256)
    gemm.add_argument("--k", type=int, default=256)
    gemm.add_argument("--n", type=int, default=256)
    gemm.add_argument("--seed", type=int, default=0)
    gemm.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    gemm.set_defaults(run=run_gemm)


def run_gemm(args) -> int:
    from verif.bench import gemm_benchmark
    for name in ("m", "k", "n"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name} must be at least 1, got {getattr(args, name)}")
    figures = gemm_benchmark(rows=args.rows, cols=args.cols, m=args.m, k=args.k, n=args.n,
                             seed=args.seed)
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:>22s}: {value}")
    return 1 if figures["mismatches"] else 0
