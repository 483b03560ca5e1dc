"""What AWS Lambda loads: the packaged zip's size, zipped and unzipped, and app.py's import time.

Packages the app as `make package` does (`chalice package --merge-template
infra/aws/resources.json`, offline, then infra/aws/precompile.py), prints the zip's size,
its unzipped size and its largest top-level entries, and the median cumulative import time
of ``app`` over several ``python -X importtime`` runs in fresh processes that write no
bytecode (Lambda's /var/task is read-only): from the zip as Chalice writes it (sources only,
so each cold start compiles them) and with its bytecode, next to a bare Chalice hello-world
app measured in the same run (bench/import_time.py). boto3 comes from the Lambda runtime, so
here from the virtualenv.

    python bench/bundle.py [--runs 7] [--stage dev]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "infra" / "aws")]

from import_time import HELLO, ROOT, cumulative_us  # noqa: E402  (the sibling bench script)
from precompile import precompile  # noqa: E402

LAMBDA_ZIP_LIMIT = 50 * 1024 * 1024  # direct upload (through S3, the unzipped limit binds)
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024


def package(stage: str, out: Path) -> Path:
    env = {**os.environ, "AWS_DEFAULT_REGION": "eu-west-3"}
    chalice = Path(sys.executable).with_name("chalice")
    command = [str(chalice), "package", "--stage", stage, "--merge-template", "infra/aws/resources.json"]
    subprocess.run([*command, str(out)], cwd=ROOT, env=env, check=True, capture_output=True)
    return out / "deployment.zip"


def mib(size: int) -> str:
    return f"{size / 1024 / 1024:.2f} MiB"


def describe(label: str, bundle: Path, into: Path) -> None:
    with zipfile.ZipFile(bundle) as archive:
        entries = [i for i in archive.infolist() if not i.is_dir()]
        archive.extractall(into)
    zipped, unzipped = bundle.stat().st_size, sum(i.file_size for i in entries)
    print(f"deployment.zip, {label}: {len(entries)} files")
    print(f"  zipped   {mib(zipped):>10}  ({zipped / LAMBDA_ZIP_LIMIT:.0%} of Lambda's 50 MiB direct upload)")
    print(f"  unzipped {mib(unzipped):>10}  ({unzipped / LAMBDA_UNZIPPED_LIMIT:.0%} of Lambda's 250 MiB)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--stage", default="dev")
    args = parser.parse_args()
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"  # as on Lambda: nothing cached between cold starts
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sources = package(args.stage, work / "dist")
        compiled = work / "compiled.zip"
        shutil.copy(sources, compiled)
        precompile(compiled)
        describe("as Chalice writes it (sources)", sources, work / "sources")
        describe("with bytecode (make package)", compiled, work / "compiled")
        with zipfile.ZipFile(sources) as archive:
            by_top = Counter[str]()
            for entry in archive.infolist():
                by_top[entry.filename.split("/", 1)[0]] += entry.file_size
        print("  largest top-level entries, unzipped sources:")
        for name, size in by_top.most_common(5):
            print(f"    {name:<24} {mib(size):>10}")

        hello_dir = work / "hello"
        hello_dir.mkdir()
        (hello_dir / "hello_app.py").write_text(HELLO)
        places = {
            "app.py, sources only": (work / "sources", "app"),
            "app.py, with bytecode": (work / "compiled", "app"),
            "bare Chalice app": (hello_dir, "hello_app"),
        }
        measured: dict[str, list[int]] = {label: [] for label in places}
        for _ in range(args.runs):  # interleaved, so machine noise hits all alike
            for label, (where, module) in places.items():
                measured[label].append(cumulative_us(where, module))

    print(f"import time, median of {args.runs} runs (python -X importtime, cumulative, no bytecode written):")
    bare = statistics.median(measured["bare Chalice app"])
    for label, runs in measured.items():
        median = statistics.median(runs)
        spread = f"(min {min(runs) / 1000:.1f}, max {max(runs) / 1000:.1f})"
        print(f"  {label:<22} {median / 1000:7.1f} ms  {spread}  x{median / bare:.1f} bare")


if __name__ == "__main__":
    main()
