"""JupyterHub for the course on one machine (``make hub``; README, *Run the course on JupyterHub*).

Every setting comes from the environment, which ``make hub`` fills from its variables (``HUB_*``):

* the hub on ``127.0.0.1:$HUB_PORT``; its own API and the proxy's on loopback too; every single-user
  server on a random loopback port;
* the proxy is configurable-http-proxy from ``.hub/node_modules`` (``npm ci`` of ``hub/package-lock.json``
  at ``make`` time; nothing is fetched when the hub runs);
* users are local system users (``hub/setup.sh`` creates them): ``$HUB_INSTRUCTOR`` (a hub admin) and
  ``$HUB_LEARNERS``; nobody else may log in. Each single-user server runs as that user's unix account
  (LocalProcessSpawner, so the hub itself runs as root), which is what nbgrader's exchange permissions rely
  on: a learner's kernel and terminal can read only what the learner's unix user can;
* log in with the system password (``HUB_AUTH=pam``, the default), or with JupyterHub's shared-password
  authenticator (``HUB_AUTH=shared``: ``$HUB_LEARNER_PASSWORD`` for learners, at least 8 characters, and
  ``$HUB_INSTRUCTOR_PASSWORD`` for the instructor, at least 32), for demonstrations and the end-to-end test
  on machines where the users have no passwords;
* the single-user servers run this repository's environment (``$HUB_VENV``) with one extra Jupyter config
  folder per role on ``JUPYTER_CONFIG_PATH``: ``hub/instructor/`` (every nbgrader extension, the course
  folder ``~/course``) or ``hub/learner/`` (the Assignments list alone); both set nbgrader's exchange
  (``$HUB_EXCHANGE``) and course id (``$HUB_COURSE_ID``).
"""

import os
import pwd
import shlex

c = get_config()  # noqa: F821  (provided by JupyterHub when it loads this file)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def setting(name, default=None):
    value = os.environ.get(name, default)
    if value is None:
        raise SystemExit(f"jupyterhub_config.py: ${name} is not set (run the hub with `make hub`)")
    return value


VENV = os.path.abspath(setting("HUB_VENV", os.path.join(REPO, ".venv")))
STATE = os.path.abspath(setting("HUB_STATE", os.path.join(REPO, ".hub", "state")))
INSTRUCTOR = setting("HUB_INSTRUCTOR", "instructor")
LEARNERS = setting("HUB_LEARNERS", "learner1 learner2").split()
EXCHANGE = os.path.abspath(setting("HUB_EXCHANGE", "/srv/nbgrader/exchange"))
COURSE_ID = setting("HUB_COURSE_ID", "retinanet")
AUTH = setting("HUB_AUTH", "pam")

# Loopback only: the public port, the hub's API, the proxy's API; single-user servers pick free ports.
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = int(setting("HUB_PORT", "8000"))
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(setting("HUB_API_PORT", "8081"))
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{int(setting('HUB_PROXY_API_PORT', '8001'))}"
c.ConfigurableHTTPProxy.command = [os.path.join(REPO, ".hub", "node_modules", ".bin", "configurable-http-proxy")]
c.ConfigurableHTTPProxy.debug = False
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True

# The hub's state (database, cookie secret, proxy token) in a root-only folder.
os.makedirs(STATE, mode=0o700, exist_ok=True)
c.JupyterHub.db_url = f"sqlite:///{os.path.join(STATE, 'jupyterhub.sqlite')}"
c.JupyterHub.cookie_secret_file = os.path.join(STATE, "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = os.path.join(STATE, "jupyterhub.pid")

# Who may log in, and how.
c.Authenticator.allowed_users = {INSTRUCTOR, *LEARNERS}
c.Authenticator.admin_users = {INSTRUCTOR}
c.Authenticator.allow_existing_users = False
if AUTH == "pam":
    c.JupyterHub.authenticator_class = "pam"
    c.PAMAuthenticator.open_sessions = False  # no login session per server (containers have no logind)
elif AUTH == "shared":
    c.JupyterHub.authenticator_class = "shared-password"
    c.SharedPasswordAuthenticator.user_password = setting("HUB_LEARNER_PASSWORD")
    c.SharedPasswordAuthenticator.admin_password = setting("HUB_INSTRUCTOR_PASSWORD")
else:
    raise SystemExit(f"jupyterhub_config.py: HUB_AUTH={AUTH!r} is not 'pam' or 'shared'")

# Each user's server: this environment's jupyterhub-singleuser as the user's unix account, in their home.
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [os.path.join(VENV, "bin", "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.notebook_dir = "~"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.Spawner.args = shlex.split(os.environ.get("HUB_SPAWNER_ARGS", ""))  # extra server options (the test's)


def role_environment(spawner):
    """The per-user environment: the role's Jupyter config folder, the exchange, the course id."""
    name = spawner.user.name
    role = "instructor" if name == INSTRUCTOR else "learner"
    home = pwd.getpwnam(name).pw_dir
    spawner.environment.update(
        {
            "PATH": f"{os.path.join(VENV, 'bin')}:/usr/local/bin:/usr/bin:/bin",
            "JUPYTER_CONFIG_PATH": os.path.join(HERE, role),
            "JUPYTER_PREFER_ENV_PATH": "1",  # this environment's kernel, not one in ~/.local
            "HUB_EXCHANGE": EXCHANGE,
            "HUB_COURSE_ID": COURSE_ID,
            "HUB_COURSE_DIR": os.path.join(home, "course"),
        }
    )


c.Spawner.pre_spawn_hook = role_environment
