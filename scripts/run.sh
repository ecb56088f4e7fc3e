#!/usr/bin/env bash
# Run a command inside the project's environment: the venv, the colcon install, and a ROS graph
# kept on this host (so demos and tests do not hear other graphs on the machine).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC1091
source "$here/.venv/bin/activate"
# setup.bash reads unset variables; relax -u while sourcing it.
set +u
# shellcheck disable=SC1091
source "$here/install/setup.bash"
set -u
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
exec "$@"
