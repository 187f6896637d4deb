"""Autograde a class with nbgrader: one command, parallel, sandboxed (``python -m retinanet.grading``).

=====================  ==============================================================================
``intake``             submissions in nbgrader's layout or an LMS export (notebooks, zips) → submitted/
``driver``             prepare the grading folder, grade submissions in parallel, merge, ``grades.csv``
``worker``             one submission: ``nbgrader autograde``, scan, ``nbgrader generate_feedback``
``sandbox``            limits, isolation support, the sandbox kernelspec
``jail``               the kernel's sandbox: hidden course files, own user id, tmpfs, resource limits
``scan``               flags code that calls the reference solution or tampers with the checks
``feedback``           the preprocessor that keeps hidden tests out of the feedback
``autograde_config``   nbgrader settings (timeouts, stderr noise, feedback), loaded by nbgrader_config.py
``benchmark``          timings on the real course → ``benchmarks/grading.json``
=====================  ==============================================================================

The reference package (``retinanet``) never imports this subpackage.
"""
