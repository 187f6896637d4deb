"""Autograde a class with nbgrader: sandboxed, in parallel, hostile submissions included.

``python -m autograder grade|merge|export|schedule`` (``make grade``, ``make export``). The course's
nbgrader config loads ``autograde_config.py``, so a plain ``nbgrader autograde`` gets the same sandbox
and protections.

=====================  ==============================================================================
``driver``             prepare the grading folder, grade submissions in parallel, merge, ``grades.csv``
``intake``             submissions (nbgrader layout, LMS exports, zips) → :class:`intake.Submission`
``layouts``            the file names of nbgrader, Moodle, Canvas, Blackboard and flat exports
``safefiles``          reading files someone else controls: regular files only, no links, size caps
``worker``             one submission: ``nbgrader autograde``, scan, ``nbgrader generate_feedback``
``execute``            nbgrader's Execute step, guarded: learner cells in the kernel, checks in the judge
``judge``              runs a check cell's checks here, with handles to the learner's objects
``kernel``             the kernel manager that starts kernels in the sandbox
``sandbox``            the bubblewrap sandbox: what a kernel sees and its limits
``launch``             the sandbox's command line, run in place of each kernel; watches its cgroup
``cgroups``            per-submission limits: memory, processes, CPU time of a kernel and its children
``runtime``            a grading run's runtime folders, cgroups and sandbox uids, and their cleanup
``scan``               flags code that uses the reference or tampers, for review (never a score)
``outputs``            caps on outputs; no HTML or JavaScript from learner code
``markup``             learner markdown, raw cells and names cleaned; the feedback pages' CSP
``feedback``           the learner's view of a graded notebook; pages for ungraded submissions
``gradebook``          moving a submission's grades between nbgrader gradebooks
``schedule``           due dates and late policies per assignment (nbgrader's late-submission plugin)
``export``             grades.csv, Canvas and Moodle CSVs, feedback packages per student
``shards``             merging the grading folders of shards (``grade --shard i/n``)
``results``            statuses and the grades CSV
``course``             nbgrader's config and API on a course folder
``autograde_config``   nbgrader settings, loaded by the course's nbgrader_config.py
``benchmark``          timings on the real course → ``benchmarks/grading.json``
=====================  ==============================================================================

Nothing here imports TensorFlow or the reference package (``retinanet``) itself: the judge loads the
course's checks from its ``tests.py`` (which do), and takes only the probe wire from ``course_checks``.
The reference package never imports this one.
"""
