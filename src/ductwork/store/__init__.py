"""The persistent store: tables, migrations, repositories, the event sink and the result backend.

Importing this package does no I/O; engines are built by ``ductwork.store.engine.create_engine``.
"""
