"""``luigi.tools``."""
