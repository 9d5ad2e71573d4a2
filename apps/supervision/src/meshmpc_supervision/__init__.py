"""Supervision applications on meshmpc (regulators and groups of banks).

- :mod:`meshmpc_supervision.fundflow`: credit fund-flow monitoring across banks, the
  ``supervision.fundflow`` job component (secure group-by with small-cell suppression and
  optional differential-privacy noise);
- :mod:`meshmpc_supervision.datagen`: the reference loan-level data of several banks;
- :mod:`meshmpc_supervision.report`: the regulator's bilingual HTML report.
"""
