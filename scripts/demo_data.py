"""Write the upload files of a simulated clean history plus one faulty lot (see :mod:`models.simulate.lots`).

``python scripts/demo_data.py OUT_DIR [--batches 25] [--samples 10] [--fault roll_pressure]``
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.simulate import Fault
from models.simulate.lots import make_batch, make_history


def load_csv(rows: int, seed: int) -> bytes:
    """The upload the load benchmarks (and the parser fast-path test) use: ``rows`` records of a plain CSV,
    two characteristics per sample (thickness, areal mass) with a constant uncertainty; ``seed`` varies values."""
    rng = random.Random(seed)
    lines = ["sample_id,characteristic,value,unit,uncertainty"]
    for i in range(rows // 2):
        lines.append(f"S{i:05d},thickness,{rng.gauss(85, 0.6):.4f},um,0.2")
        lines.append(f"S{i:05d},areal_mass,{rng.gauss(21.5, 0.15):.4f},mg/cm2,0.05")
    return ("\n".join(lines) + "\n").encode()


def main(argv: list[str] | None = None) -> int:
    """Write a clean history and one faulty batch as CSV files into a directory."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--batches", type=int, default=25)
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--fault", default="roll_pressure", help="variable of the injected mean-shift fault")
    ap.add_argument("--magnitude", type=float, default=6.0, help="fault size in units of the variable's scale")
    ap.add_argument("--kind", default="mean_shift")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    batches = make_history(args.batches, n_samples=args.samples)
    batches.append(
        make_batch(
            seed=10_000, lot_id="LOT-FAULT", n_samples=args.samples, fault=Fault(args.kind, args.fault, args.magnitude)
        )
    )
    for b in batches:
        (args.out / f"{b.lot_id}_measurements.csv").write_bytes(b.measurements_csv)
        (args.out / f"{b.lot_id}_process.csv").write_bytes(b.process_csv)
    print(f"wrote {len(batches)} batches ({args.batches} clean + 1 with {args.kind} on {args.fault}) to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
