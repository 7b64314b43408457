"""Running tries on other hosts: Celery workers and Kubernetes pods (ADRs 0010, 0011, 0012).

A remote worker shares nothing with the scheduler but the database, the broker and an object
store. It fetches the flows' code as a content-addressed bundle (``bundles``), records the
start and end of each try in the database with a compare-and-set (``runner``), writes the try's
log to an fsspec store while it runs (``logs``) and tells the scheduler about the end over the
broker; the scheduler falls back to the database for anything it did not hear (``executor``).
"""
