#!/usr/bin/env bash
# Idempotent set-up on a fresh machine: .venv with the pinned ROS 2 Kilted wheels and Python
# dependencies, the wheels' exported CMake paths pointed at this interpreter, then a colcon build
# of the package. A second run with nothing changed only re-runs the (incremental) build.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
python="${PYTHON:-python3}"

# colcon builds the message interfaces with CMake and a C/C++ compiler; say so before anything else.
missing=()
for tool in "$python" cmake make cc c++; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: missing ${missing[*]}; on Debian/Ubuntu: apt-get install python3 python3-venv cmake make g++" >&2
  exit 1
fi
if ! "$python" -c 'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 13))'; then
  echo "setup: $("$python" --version 2>&1) has no ROS 2 Kilted wheels; use Python 3.10 to 3.13 (PYTHON=python3.12 make ...)" >&2
  exit 1
fi
# The venv lives outside the source tree: CMake refuses to export include paths (numpy's, from the
# venv) that lie inside the package's source directory. .venv links to it for convenience.
venv="${FLYWHEEL_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/alignment_flywheel/venv-$(printf '%s' "$here" | sha256sum | cut -c1-12)}"

if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating $venv with $("$python" --version 2>&1)"
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv"
fi
if [ "$(readlink "$here/.venv" 2>/dev/null)" != "$venv" ]; then
  rm -rf "$here/.venv"
  ln -s "$venv" "$here/.venv"
fi

stamp="$venv/.requirements.sha256"
want="$(cat requirements.txt setup.py | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing pinned requirements"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet -r requirements.txt
  "$venv/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e .
  # The wheels' exported CMake targets name the include dirs of the container they were built in
  # (/opt/python/cpXY-cpXY/...). Point them at this interpreter and this venv's numpy instead.
  py_include="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
  np_include="$("$venv/bin/python" -c 'import numpy; print(numpy.get_include())')"
  { grep -rlE '/opt/python/cp[0-9]+-cp[0-9]+' "$venv/share" --include='*.cmake' || true; } | xargs -r sed -i -E \
    -e "s#/opt/python/cp[0-9]+-cp[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/_core/include#${np_include}#g" \
    -e "s#/opt/python/cp[0-9]+-cp[0-9]+/include/python3\.[0-9]+#${py_include}#g"
  echo "$want" > "$stamp"
fi

# shellcheck disable=SC1091
source "$venv/bin/activate"
export CMAKE_PREFIX_PATH="$venv" AMENT_PREFIX_PATH="$venv"
if ! colcon build --symlink-install --event-handlers console_cohesion- \
    --cmake-args -DPython3_EXECUTABLE="$venv/bin/python" > "$here/log-colcon-build.txt" 2>&1; then
  cat "$here/log-colcon-build.txt" >&2
  echo "setup: colcon build failed (full log above)" >&2
  exit 1
fi
echo "setup: ready ($(grep -E '^Summary' "$here/log-colcon-build.txt" || true))"
