"""nbgrader in a learner's hub server (on JUPYTER_CONFIG_PATH, set by hub/jupyterhub_config.py): the
exchange and the course id, nothing else (a learner has no course folder)."""

import os

c = get_config()  # noqa: F821

c.Exchange.root = os.environ.get("HUB_EXCHANGE", "/srv/nbgrader/exchange")
c.CourseDirectory.course_id = os.environ.get("HUB_COURSE_ID", "retinanet")
