"""The rehearsal's checks of a sweep's results (apptainer/rehearsal/slurm_inside.sh), run with the
login node's peftbench (the image's venv, from the host).

    check_results.py SWEEP_DIR COUNT IMAGE [--wait SECONDS] [--resumed RUN_ID]
    check_results.py --digest IMAGE        # the sandbox's sha256, as provenance must record it

Every run's result.json must exist and be a success, made on the localhost Slurm (a job id) inside
IMAGE, whose path and sha256 provenance records; --resumed: that run resumed from a checkpoint.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from peftbench.core.image import sandbox_sha256
from peftbench.core.results import read_result


def result_problem(path: Path, image: str, digest: str) -> str | None:
    result = read_result(path)
    prov, run = result.provenance, path.parent.name
    if result.status != "success":
        return f"{run}: {result.status} ({result.error})"
    if prov is None or prov.image != image or prov.image_sha256 != digest:
        return f"{run}: provenance image {prov and prov.image} {prov and prov.image_sha256}"
    if not prov.slurm_job_id:
        return f"{run}: no Slurm job id in its provenance"
    return None


def problems(sweep_dir: Path, count: int, image: str, digest: str, resumed: str | None) -> list[str]:
    found = sorted(sweep_dir.glob("*/result.json"))
    if len(found) < count:
        return [f"{len(found)} of {count} results in {sweep_dir}"]
    wrong = [problem for path in found if (problem := result_problem(path, image, digest))]
    if resumed and read_result(sweep_dir / resumed / "result.json").resumed_from_step is None:
        wrong.append(f"{resumed}: not resumed from a checkpoint")
    return wrong


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--digest")
    parser.add_argument("sweep_dir", nargs="?", type=Path)
    parser.add_argument("count", nargs="?", type=int)
    parser.add_argument("image", nargs="?")
    parser.add_argument("--wait", type=float, default=0)
    parser.add_argument("--resumed")
    args = parser.parse_args()
    if args.digest:
        print(sandbox_sha256(Path(args.digest)))
        return 0
    digest = sandbox_sha256(Path(args.image))
    deadline = time.monotonic() + args.wait
    while True:
        wrong = problems(args.sweep_dir, args.count, args.image, digest, args.resumed)
        if not wrong or time.monotonic() > deadline:
            break
        time.sleep(5)
    for line in wrong:
        print(f"rehearsal: {line}", file=sys.stderr)
    if not wrong:
        print(f"{args.count} results: success, in {args.image} (sha256 {digest[:12]}...), on Slurm")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
