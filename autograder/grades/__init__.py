"""A class's grades: nbgrader gradebooks, due dates and late policies, exports, shards merged, the folder lock.

``gradebook``  a submission's grades moved between gradebooks; what grading depends on in one (``definition``)
``schedule``   due dates, late policies and extensions per assignment (nbgrader's late-submission plugin)
``lms``        Moodle's grading worksheet and Canvas's gradebook CSV, as the LMSs' own code reads and writes them
``export``     grades.csv, Canvas and Moodle CSVs, feedback packages per student (stale feedback remade first)
``shards``     merging the grading folders of shards (``grade --shard i/n``)
``lock``       one grader per grading folder at a time (``OUT/grading.lock``)
"""
