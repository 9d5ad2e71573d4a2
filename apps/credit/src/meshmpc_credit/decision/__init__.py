"""The pre-loan decision service at the bank.

* :mod:`.screens` - keyword PIR against every partner's labelled risk list
  (one session per partner, concurrent requests coalesced into batches);
* :mod:`.rating` - the :class:`~.rating.Rater` protocol and the bank-side
  scorecard (the joint online scorer plugs in through the same protocol);
* :mod:`.runtime` - the strategy versions in service, hot-swapped atomically;
* :mod:`.records` - every decision with its inputs, version and fired rules;
* :mod:`.service` - one decision end to end, and its replay;
* :mod:`.app` / :mod:`.serve` - the HTTP API and ``meshmpc credit serve``.
"""
