"""Autograde a class with nbgrader: sandboxed, in parallel, hostile submissions included.

``python -m autograder grade|merge|export|schedule|exercises|release`` (``make grade``, ``make export``,
``make exercises``, ``make release``). The course's
nbgrader config loads ``grading/autograde_config.py``, so a plain ``nbgrader autograde`` gets the same
sandbox and protections.

The grader's flow, one sub-package per step (``results`` is the vocabulary they share)::

    intake/ → driver → grading/worker (nbgrader autograde: sandbox/ kernel ⇄ judge) → grades/

==============================  ===========================================================================
``driver``                      prepare the grading folder, grade submissions in parallel, merge, grades.csv
``results``                     statuses, a submission's record and the grades CSV
``course``                      nbgrader's config and API on a course folder
``benchmark``                   timings on the real course → ``benchmarks/grading.json``
``release``                     the exercises generated in a temporary folder; the learner release (no solutions)
``intake``                      submissions in, as untrusted data
``intake.intake``               submissions (nbgrader layout, LMS exports, zips) → :class:`intake.Submission`
``intake.layouts``              the file names of nbgrader, Moodle, Canvas, Blackboard and flat exports
``intake.safefiles``            reading files someone else controls: regular files only, no links, size caps
``sandbox``                     the bubblewrap sandbox every graded kernel runs in
``sandbox.sandbox``             what a kernel sees and its limits (``c.Sandbox``, :class:`sandbox.Limits`)
``sandbox.kernel``              the kernel manager that starts kernels in the sandbox
``sandbox.launch``              the sandbox's command line, run in place of each kernel; watches its cgroup
``sandbox.cgroups``             per-submission limits: memory, processes, CPU time of a kernel and its children
``sandbox.runtime``             a grading run's runtime folders, cgroups and sandbox uids, and their cleanup
``grading``                     one submission through nbgrader: the steps nbgrader runs, and their settings
``grading.worker``              one submission: ``nbgrader autograde``, scan, ``nbgrader generate_feedback``
``grading.overwrite``           nbgrader's OverwriteCells, without its false checksum warning on hidden tests
``grading.execute``             nbgrader's Execute step, guarded: learner cells in the kernel, checks in the judge
``grading.judge``               runs a check cell's checks here, with handles to the learner's objects
``grading.kernel_checks``       the kernel's ``tests.py`` while grading: ``TEST_*`` names that do nothing
``grading.scan``                flags code that uses the reference or tampers, for review (never a score)
``grading.outputs``             caps on outputs; no HTML or JavaScript from learner code
``grading.markup``              learner markdown, raw cells and names cleaned; the feedback pages' CSP
``grading.feedback``            the learner's view of a graded notebook; pages for ungraded submissions
``grading.autograde_config``    nbgrader settings, loaded by the course's nbgrader_config.py
``grades``                      a class's grades: gradebooks, due dates, exports, shards
``grades.gradebook``            moving a submission's grades between nbgrader gradebooks; what grading depends on
``grades.schedule``             due dates and late policies per assignment (nbgrader's late-submission plugin)
``grades.export``               grades.csv, Canvas and Moodle CSVs, feedback packages per student
``grades.shards``               merging the grading folders of shards (``grade --shard i/n``)
``grades.lock``                 one grader per grading folder at a time (``OUT/grading.lock``, ``--wait``)
==============================  ===========================================================================

Imports go one way: a sub-package takes from this folder only ``results`` and ``course``, never ``driver``,
``__main__`` or ``benchmark``; ``grading`` uses ``sandbox`` (the kernel) and ``grades.gradebook``, ``grades``
reads files through ``intake.safefiles``, and no sub-package imports one that imports it
(``test_suite/checks/test_judge.py``).

Nothing here imports TensorFlow or the reference package (``retinanet``) itself: the judge loads the
course's checks from its ``tests.py`` (which do), and takes only the probe wire from ``course_checks``.
The reference package never imports this one.
"""
