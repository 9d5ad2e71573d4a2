"""Joint jobs: job files, the DAG runner and the component contract (see api.py)."""

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
