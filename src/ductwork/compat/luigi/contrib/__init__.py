"""``luigi.contrib``: Luigi's third-party integrations are not shimmed (use ``ductwork.integrations``)."""
