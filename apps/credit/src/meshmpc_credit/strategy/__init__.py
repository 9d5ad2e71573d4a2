"""Zero-code strategies: JDM decision graphs run by zen-engine, versioned in a store.

* :mod:`.context` - the decision context a strategy may read (names and types);
* :mod:`.document` - parsing, compiling once per version, evaluating with the
  rules that fired;
* :mod:`.validate` - the checks before publishing (variables, types, grade cut-offs);
* :mod:`.backtest` - approval and bad rates, expected loss and the swap matrix
  against the version in service;
* :mod:`.store` - versions, maker-checker publication, rollback, champion / challenger.
"""

from meshmpc_credit.strategy.document import CompiledStrategy, Outcome, StrategyError

__all__ = ["CompiledStrategy", "Outcome", "StrategyError"]
