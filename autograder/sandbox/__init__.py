"""The bubblewrap sandbox every graded kernel runs in, with its limits per submission.

``sandbox``  what a kernel sees and its limits: ``c.Sandbox`` (nbgrader's config), :class:`sandbox.Limits`
``kernel``   the Jupyter kernel manager that starts each kernel through the launcher
``launch``   ``python -I -m autograder.sandbox.launch``: run in place of the kernel, starts bubblewrap and
             watches the kernel's cgroup
``cgroups``  per-submission limits (cgroups v2/v1): memory, processes, CPU time of a kernel and its children
``runtime``  a grading run's runtime folders, cgroups and sandbox uids, and their cleanup
"""
