#!/usr/bin/env bash
# Checks, without installing anything, that edgedet's device install resolves to
# wheels for a Jetson on JetPack 6 (Ubuntu 22.04: glibc 2.35, aarch64, CPython
# 3.10), both ways the README gives:
#   pip install --no-deps . && pip install -r requirements/device.txt
#   pip install .            (its markers must leave TensorFlow, Keras, tf2onnx
#                             and LiteRT out below Python 3.11)
# Usage: tools/check_device_install.sh [PYTHON_VERSION] [ARCH]   (default: 3.10 aarch64)
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:-3.10}"
arch="${2:-aarch64}"
python="${PYTHON:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
pip=("$python" -m pip --disable-pip-version-check)

# pip matches manylinux tags exactly: list every glibc up to JetPack 6's 2.35.
platforms=()
for tag in manylinux2014 manylinux_2_17 manylinux_2_27 manylinux_2_28 manylinux_2_31 \
           manylinux_2_34 manylinux_2_35; do
  platforms+=(--platform "${tag}_${arch}")
done
target=("${platforms[@]}" --python-version "$version" --implementation cp --only-binary=:all:)

# 1. edgedet's own requirements on the target. `pip download --python-version`
# checks wheel tags and Requires-Python for the target but evaluates environment
# markers with THIS interpreter, so the markers are evaluated here, for the target.
"${pip[@]}" wheel --quiet --no-deps -w "$work/wheel" .
"$python" - "$work"/wheel/edgedet-*.whl "$version" "$arch" > "$work/requirements.txt" <<'PY'
import sys, zipfile
try:
    from packaging.markers import Marker
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet
except ImportError:  # pip vendors packaging
    from pip._vendor.packaging.markers import Marker
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.specifiers import SpecifierSet

wheel, version, arch = sys.argv[1:]
with zipfile.ZipFile(wheel) as archive:
    name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
    lines = archive.read(name).decode().splitlines()
env = {"python_version": version, "python_full_version": version + ".12",
       "platform_machine": arch, "sys_platform": "linux", "platform_system": "Linux",
       "os_name": "posix", "implementation_name": "cpython",
       "platform_python_implementation": "CPython", "extra": ""}
requires_python = next(l.split(":", 1)[1].strip() for l in lines if l.startswith("Requires-Python:"))
if version + ".12" not in SpecifierSet(requires_python):
    sys.exit(f"FAILED: Requires-Python {requires_python} excludes CPython {version}")
kept = []
for line in lines:
    if line.startswith("Requires-Dist:"):
        req = Requirement(line.split(":", 1)[1].strip())
        if req.marker is None or req.marker.evaluate(env):
            kept.append(req)
heavy = [str(r) for r in kept if r.name.lower() in ("tensorflow", "keras", "tf2onnx", "ai-edge-litert")]
if heavy:
    sys.exit(f"FAILED: on CPython {version} / {arch}, `pip install .` would need {heavy}")
device = [Requirement(l) for l in open("requirements/device.txt").read().splitlines()
          if l.strip() and not l.startswith("#")]
if sorted(map(str, kept)) != sorted(map(str, device)):
    sys.exit(f"FAILED: edgedet's requirements on CPython {version} {sorted(map(str, kept))} "
             f"differ from requirements/device.txt {sorted(map(str, device))}")
print("\n".join(map(str, kept)))
PY
echo "edgedet's requirements on CPython $version / $arch (= requirements/device.txt):"
cat "$work/requirements.txt"

# 2. Every one of them (and their dependencies) has a wheel for the target.
"${pip[@]}" download --quiet "${target[@]}" -d "$work/device" -r requirements/device.txt \
  2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
echo "wheels for CPython $version / $arch:"
ls "$work/device"
echo "OK: the device install resolves for CPython $version / $arch"
