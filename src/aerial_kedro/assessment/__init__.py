"""Map accuracy assessment against reference data (no Spark, no Kedro).

* :mod:`.olofsson` - error matrix in area proportions, overall / user's / producer's accuracy
  and area-adjusted class areas with 95 % confidence intervals, after Olofsson et al. (2014).
"""
