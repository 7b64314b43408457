"""Executors: implementations of ``ductwork.engine.executor.Executor``."""
