"""nbgrader in the instructor's hub server (on JUPYTER_CONFIG_PATH, set by hub/jupyterhub_config.py).

The course folder is ``~/course`` (``hub/setup.sh`` fills its ``release/`` from the learner release); the
exchange and the course id come from the hub (``make hub``'s HUB_EXCHANGE and HUB_COURSE_ID).
"""

import os

c = get_config()  # noqa: F821

c.Exchange.root = os.environ.get("HUB_EXCHANGE", "/srv/nbgrader/exchange")
c.CourseDirectory.course_id = os.environ.get("HUB_COURSE_ID", "retinanet")
c.CourseDirectory.root = os.environ.get("HUB_COURSE_DIR", os.path.expanduser("~/course"))
