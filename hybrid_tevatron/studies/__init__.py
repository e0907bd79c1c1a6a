"""Studies: many trainings and evaluations run as one resumable command, with their expected scores.

* ``reproduction``: the paper's comparison (``bash recipes/reproduce.sh``);
* ``domain_grid`` (the grid as data), ``domain_study`` (runs it) and ``domain_tables`` (its tables): the
  domain-adaptation study (``bash recipes/domain_adaptation.sh``);
* ``records``: what both read and write (records, seed statistics, generated markdown blocks);
* ``check_expected``: a results file against ``recipes/expected/*.yaml`` (OK / OKish / FAIL).
"""
