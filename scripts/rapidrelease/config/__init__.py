"""What a site configures, loaded and validated before anything runs: the floor every stage stands on.

:mod:`~rapidrelease.config.run` (config.yaml, the lot and unit sheets, the reference and the
settings, as one :class:`~rapidrelease.config.run.RunConfig`), :mod:`~rapidrelease.config.specs`
(the specifications), :mod:`~rapidrelease.config.sheets`, :mod:`~rapidrelease.config.schemas` and
:mod:`~rapidrelease.config.yaml_files` (reading and checking the files a person edits) and
:mod:`~rapidrelease.config.vocabulary` (assays, roles and read categories). Nothing here imports
another part of rapidrelease but :mod:`rapidrelease.errors`.
"""
