"""Ductwork's own pipeline files (YAML or JSON): tasks by operator name, compiled to a flow;
the JSON Schema they are checked against; and the export of a Python flow to that format."""
