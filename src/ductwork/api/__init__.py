"""The REST API (FastAPI, under ``/api/v1``), served with the web UI by ``ductwork webserver``.

Build the application with ``ductwork.api.app.create_app(settings, engine)``. Nothing here
imports user code (ADR 0001): every answer comes from the store, and every change goes through
the same services as the CLI (``ductwork.services``). Access rules are in ADR 0004.
"""
