"""The web UI: server-rendered pages (Jinja2) and small JavaScript modules that call the REST API.

Served by the same application as the API (``ductwork.api.app.create_app``); pages are in
``pages.py``, the login in ``login.py``, the trigger form in ``forms.py``.
"""
