#!/usr/bin/env bash
# Release the grader's feedback to the learners through nbgrader's exchange (`make hub-feedback GRADES=dir`, as
# root, after `nbgrader collect` in the instructor's ~/course and `make grade SUBMISSIONS=~instructor/course/submitted`).
# `make grade` writes GRADES/feedback/<student>/<assignment>/<notebook>.html, nbgrader's own feedback layout;
# `nbgrader release_feedback` also wants each submission's timestamp.txt and submission_secret.txt beside the
# page (it names the released page by a hash of the secret, which the learner's `fetch_feedback` recomputes).
# Both come from the collected submission the page was graded from; then the instructor releases.
set -euo pipefail
: "${HUB_INSTRUCTOR:?}" "${GRADES:?}"
hub="$(cd "$(dirname "$0")" && pwd)"
course="$(getent passwd "$HUB_INSTRUCTOR" | cut -d: -f6)/course"
assignments=""
for page in "$GRADES"/feedback/*/*/*.html; do
  [ -f "$page" ] || continue
  folder="$(dirname "$page")"; assignment="$(basename "$folder")"; student="$(basename "$(dirname "$folder")")"
  submitted="$course/submitted/$student/$assignment"
  if [ ! -f "$submitted/submission_secret.txt" ]; then
    echo "hub/feedback.sh: skipped $page (no collected submission $submitted)" >&2; continue
  fi
  mkdir -p "$course/feedback/$student/$assignment"
  cp "$page" "$submitted/timestamp.txt" "$submitted/submission_secret.txt" "$course/feedback/$student/$assignment/"
  case " $assignments " in *" $assignment "*) ;; *) assignments="$assignments $assignment";; esac
done
[ -d "$course/feedback" ] && chown -R "$HUB_INSTRUCTOR:" "$course/feedback"
for assignment in $assignments; do
  "$hub/as_user.sh" "$HUB_INSTRUCTOR" nbgrader release_feedback "$assignment"
done
echo "hub/feedback.sh: released feedback for${assignments:- nothing}"
