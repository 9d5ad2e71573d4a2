"""Joint jobs: job files, the DAG runner and the component contract (see api.py).

Modules: ``api`` (the component contract), ``spec`` (job files), ``registry``
(components from entry points), ``runner`` (one party's run), ``artefacts``
(what a run leaves), ``progress`` (bars), ``local`` (ways to run a whole job),
``cli`` (``meshmpc job``). The runner knows no component by name.
"""

from meshmpc.jobs.api import (
    COMPONENT_GROUP,
    Component,
    PartyInput,
    StepContext,
    StepOutput,
    find_model,
    find_table,
)

__all__ = ["COMPONENT_GROUP", "Component", "PartyInput", "StepContext", "StepOutput",
           "find_model", "find_table"]
