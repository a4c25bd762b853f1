"""trigger.scan: the design-space search's library (``trigger scan``), no stage.

- :mod:`.config`: the scan config (``configs/scan/*.yaml``), its base configs and each trial's configs;
- :mod:`.space`: the search space as Optuna sees it (distributions, samplers, objectives);
- :mod:`.results`: one typed record per trial, the CSV export, the Pareto front;
- :mod:`.plots`: the PNG plots of a scan.

The submodules are imported where they are used (matplotlib and Optuna stay out of a plain import).
"""
