"""The pre-loan decision service at the bank.

* :mod:`.screens` - keyword PIR against every partner's table (sessions per
  partner, concurrent requests coalesced into batches, recovery after a back-off);
* :mod:`.joint_table` / :mod:`.partner` - a partner's joint PIR table (list flags
  and masked partial score) and its serving jobs;
* :mod:`.joint_score` - the bank's joint online score from those records;
* :mod:`.rating` - the :class:`~.rating.Rater` protocol and the bank-only scorecard;
* :mod:`.runtime` - the strategy versions in service, hot-swapped atomically;
* :mod:`.records` - every decision with its inputs, version and fired rules;
* :mod:`.service` - one decision end to end, and its replay;
* :mod:`.app` / :mod:`.serve` - the HTTP API and ``meshmpc credit serve``.
"""
