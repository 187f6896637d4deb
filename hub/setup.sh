#!/usr/bin/env bash
# The machine side of `make hub` (as root; idempotent): local users, nbgrader's exchange, the instructor's
# course folder with the learner release, and the permissions that keep the solutions from the learners.
# Settings from the environment (the Makefile's HUB_* variables):
#   HUB_INSTRUCTOR  the instructor's user name          HUB_LEARNERS   learners' user names (space-separated)
#   HUB_EXCHANGE    nbgrader's exchange folder            HUB_RELEASE    folder of the learner release
#   HUB_ASSIGNMENTS the assignments copied into ~HUB_INSTRUCTOR/course/release/
#   HUB_VENV        the environment the users' servers run
set -euo pipefail
cd "$(dirname "$0")/.."
: "${HUB_INSTRUCTOR:?}" "${HUB_LEARNERS:?}" "${HUB_EXCHANGE:?}" "${HUB_RELEASE:?}" "${HUB_ASSIGNMENTS:?}" "${HUB_VENV:?}"
[ "$(id -u)" = 0 ] || { echo "hub/setup.sh: run as root (it creates users; the hub spawns servers as them)" >&2; exit 1; }

# 1. Local system users, each with a private home (0700). No password is set here: with HUB_AUTH=pam set
#    them with `passwd NAME`; HUB_AUTH=shared needs none.
for user in $HUB_INSTRUCTOR $HUB_LEARNERS; do
  id -u "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$user"
  chmod 0700 "$(getent passwd "$user" | cut -d: -f6)"
done

# 2. nbgrader's exchange: world-writable as nbgrader documents (`chmod ugo+rw`), plus the sticky bit so that
#    nobody but its owner can rename or remove a course folder in it. `nbgrader release_assignment` makes
#    the course's outbound/ (0755), inbound/ (2733: learners can write, not list) and feedback/ (0711).
searchable() {  # o+x (search, not list) on a folder and every folder above it, where missing; says so
  local folder="$1"
  while [ "$folder" != / ]; do
    if [ "$(( 0$(stat -c %a "$folder") & 01 ))" = 0 ]; then chmod o+x "$folder"; echo "hub/setup.sh: o+x $folder"; fi
    folder="$(dirname "$folder")"
  done
}
mkdir -p "$HUB_EXCHANGE"
chmod 1777 "$HUB_EXCHANGE"
searchable "$(dirname "$HUB_EXCHANGE")"

# 3. The instructor's course folder: release/ holds the learner release (never the solutions); collect,
#    grading and feedback happen there too. Owned by the instructor, inside a 0700 home.
home="$(getent passwd "$HUB_INSTRUCTOR" | cut -d: -f6)"
for assignment in $HUB_ASSIGNMENTS; do
  [ -d "$HUB_RELEASE/$assignment" ] || { echo "hub/setup.sh: no $HUB_RELEASE/$assignment (HUB_RELEASE)" >&2; exit 1; }
  rm -rf "$home/course/release/$assignment"
  mkdir -p "$home/course/release"
  cp -r "$HUB_RELEASE/$assignment" "$home/course/release/$assignment"
done
chown -R "$HUB_INSTRUCTOR:" "$home/course"
chmod 0700 "$home/course"

# 4. The users' servers run this environment and its Python, so the folders on the way to both must be
#    searchable by other users (o+x; nothing becomes listable that was not). The source notebooks and the
#    course's gradebook hold the solutions: nobody but root reads them.
venv="$(cd "$HUB_VENV" && pwd)"
searchable "$venv"
searchable "$(cd "$(dirname "$(readlink -f "$venv/bin/python")")" && pwd)"
searchable "$("$venv/bin/python" -c 'import sys; print(sys.base_prefix)')"
chmod -R go-rwx solutions
[ ! -e gradebook.db ] || chmod go-rwx gradebook.db
learner="${HUB_LEARNERS%% *}"
runuser -u "$learner" -- "$venv/bin/python" -c "import importlib.util as u, nbgrader, jupyterhub.singleuser
assert all(u.find_spec(m) for m in ('retinanet', 'course', 'tests'))" || {
  echo "hub/setup.sh: $learner cannot run the course's environment $venv" >&2; exit 1; }
echo "hub/setup.sh: users $HUB_INSTRUCTOR (instructor) and $HUB_LEARNERS, exchange $HUB_EXCHANGE, release from $HUB_RELEASE"
