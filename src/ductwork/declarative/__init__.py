"""Pipelines written as data: AWS Data Pipeline definitions (``.json``) and Ductwork's own YAML
format, compiled to the same graph model as Python flows and run on the same engine.

``load_file(path)`` is what ``ductwork.loading`` calls for a ``.json``, ``.yaml`` or ``.yml``
file of the flows folder (in the scheduler's parsing process, in workers, and for
``ductwork run FILE.json``): it returns the flows the file defines, or its errors, naming the
object id and field of each problem.
"""

from __future__ import annotations

from ductwork.declarative.files import DECLARATIVE_SUFFIXES, is_declarative, load_file

__all__ = ["DECLARATIVE_SUFFIXES", "is_declarative", "load_file"]
