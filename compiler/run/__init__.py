"""Stage 6: one run against a server: the run folder, the catalogue provider a
caller owns, the public steps (preflight, submit, follow, finish, resume),
timings, progress, profile.
"""
