"""Tools around the reference RetinaNet: the command line (``cli``, run as ``python -m retinanet``) and the
speed benchmark (``benchmark``, its ``benchmark`` command)."""
