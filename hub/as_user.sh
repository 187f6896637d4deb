#!/usr/bin/env bash
# Run a command as a hub user, with the environment the hub gives that user's server (hub/jupyterhub_config.py):
# this repository's environment first on PATH, the role's Jupyter config folder, the exchange and the course
# id; in the instructor's course folder (~/course) or a learner's home. What the user would type in a
# terminal of their hub server, e.g. as root: HUB_EXCHANGE=... hub/as_user.sh instructor nbgrader collect 01-architecture
set -euo pipefail
: "${HUB_INSTRUCTOR:=instructor}" "${HUB_EXCHANGE:=/srv/nbgrader/exchange}" "${HUB_COURSE_ID:=retinanet}"
hub="$(cd "$(dirname "$0")" && pwd)"
: "${HUB_VENV:=$(dirname "$hub")/.venv}"
user="$1"; shift
home="$(getent passwd "$user" | cut -d: -f6)"
[ -n "$home" ] || { echo "hub/as_user.sh: no user $user" >&2; exit 1; }
if [ "$user" = "$HUB_INSTRUCTOR" ]; then role=instructor; cwd="$home/course"; else role=learner; cwd="$home"; fi
cd "$cwd"
exec runuser -u "$user" -- env -i HOME="$home" USER="$user" LANG=C.UTF-8 \
  PATH="$HUB_VENV/bin:/usr/local/bin:/usr/bin:/bin" JUPYTER_CONFIG_PATH="$hub/$role" JUPYTER_PREFER_ENV_PATH=1 \
  HUB_EXCHANGE="$HUB_EXCHANGE" HUB_COURSE_ID="$HUB_COURSE_ID" HUB_COURSE_DIR="$home/course" "$@"
