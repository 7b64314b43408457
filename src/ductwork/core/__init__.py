"""The pure model: tasks, flows, parameters, targets, schedules, states and trigger rules.

Nothing in ``ductwork.core`` touches a database, starts a process at import, or reads
configuration; it is where most unit tests live.
"""
