"""Dependencies between flows: wait for a task of another flow's run, clear it with this one, or
start a run of another flow. Both read or write the metadata database through the store the engine lends the try
(``context["store"]``), so they run under the scheduler (or an in-process run given a store)."""

from ductwork.integrations.flows.operators import ExternalTaskMarker, ExternalTaskSensor, TriggerFlowOperator

__all__ = ["ExternalTaskMarker", "ExternalTaskSensor", "TriggerFlowOperator"]
