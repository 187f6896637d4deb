"""Submissions in, as untrusted data: an nbgrader ``submitted/`` folder or an LMS export.

``intake``     the submissions of a class (:func:`intake.collect`), refused entries with their reasons
``layouts``    the file names of nbgrader, Moodle, Canvas, Blackboard and flat exports
``safefiles``  reading files someone else controls: regular files only, never through a link, size-capped
"""
