"""The ``ductwork`` command line: each command parses input, calls a service, renders output."""
