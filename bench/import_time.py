"""Import time of app.py (the Lambda's cold-start share that is ours), next to a bare Chalice app.

Runs ``python -X importtime -c "import app"`` several times in fresh processes and
prints the median cumulative microseconds of the top-level module, for this
project's app.py and for a hello-world Chalice app measured in the same run.

It also models that import at Lambda's memory sizes: Lambda gives a function a share of a
vCPU proportional to its memory (one vCPU at 1,769 MB, chalicelib/footprint.json), so an import
measured on one core here stretches by 1769 / MB below that (taking this machine's core for
Lambda's vCPU; the runtime's own start and the zip's download are not in it). Run it from a tree
whose bytecode is written (``__pycache__``), as the packaged zip carries it.

    python bench/import_time.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOOTPRINT = ROOT / "chalicelib" / "footprint.json"
SIZES = (256, 512, 1024, 1769)
HELLO = """from chalice import Chalice
app = Chalice(app_name="hello")


@app.route("/")
def index():
    return {"hello": "world"}
"""


def cumulative_us(cwd: Path, module: str) -> int:
    env = {**os.environ, "AWS_REGION": "eu-west-3", "PYTHONPATH": str(cwd)}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|\s*(\S+)$", line)
        if match and match.group(2) == module:
            return int(match.group(1))
    raise RuntimeError(f"no import line for {module}:\n{done.stderr[-500:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        hello_dir = Path(tmp)
        (hello_dir / "hello_app.py").write_text(HELLO)
        ours, bare = [], []
        for _ in range(args.runs):  # interleaved, so machine noise hits both alike
            ours.append(cumulative_us(ROOT, "app"))
            bare.append(cumulative_us(hello_dir, "hello_app"))
    m_ours, m_bare = statistics.median(ours), statistics.median(bare)
    print(f"runs: {args.runs}")
    for label, runs, median in (("app.py", ours, m_ours), ("bare Chalice app", bare, m_bare)):
        low, high = min(runs) / 1000, max(runs) / 1000
        print(f"{label:<17} median {median / 1000:7.1f} ms  (min {low:.1f}, max {high:.1f})")
    print(f"ratio app.py / bare: {m_ours / m_bare:.2f}")
    vcpu_mb = json.loads(FOOTPRINT.read_text(encoding="utf-8"))["factors"]["lambda_mb_per_vcpu"]["value"]
    modelled = ", ".join(f"{mb} MB {m_ours / 1000 * vcpu_mb / min(mb, vcpu_mb):.0f} ms" for mb in SIZES)
    print(f"app.py's import at Lambda's CPU share (x {vcpu_mb}/MB below one vCPU): {modelled}")


if __name__ == "__main__":
    main()
