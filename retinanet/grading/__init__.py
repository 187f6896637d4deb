"""Autograde a class with nbgrader: one command, parallel, sandboxed (``python -m retinanet.grading``).

=================  ====================================================================================
``intake``         submissions in nbgrader's layout or as an LMS export (notebooks, zips) → ``submitted/``
``driver``         prepare the grading folder, grade students in parallel, merge, write ``grades.csv``
``worker``         one student: ``nbgrader autograde``, scan, ``nbgrader generate_feedback``
``sandbox``        limits, isolation support, the sandbox kernelspec
``jail``           the kernel's sandbox: hidden course files, own user id, tmpfs, resource limits
``scan``           flags code that calls the reference solution or tampers with the checks
``feedback``       the preprocessor that keeps hidden tests out of the feedback
=================  ====================================================================================

The reference package (``retinanet``) never imports this subpackage.
"""
