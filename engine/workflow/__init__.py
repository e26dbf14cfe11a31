"""Workflows as state machines: one `transitions` machine per workflow, compiled once.

The machine answers "may transition T fire from state S, and where does it lead?"; the record
service does the rest (roles, require, guard, set, create, audit) in one database transaction,
which is what makes a transition atomic. Records are never added to the machine as models:
that would cost a machine binding per record and keep records alive (LIBRARIES.md).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

from transitions import Machine

from engine.registry.model import Registry, Transition, Workflow


class StateMachines:
    """The compiled machines of every workflow of a registry."""

    def __init__(self, registry: Registry):
        machines = {}
        for workflow in registry.workflows.values():
            machines[workflow.name] = Machine(
                model=None, states=list(workflow.states), initial=workflow.initial,
                transitions=[{"trigger": t.name, "source": list(t.sources), "dest": t.target}
                             for t in workflow.transitions.values()],
                auto_transitions=False, ignore_invalid_triggers=False)
        self._machines: Mapping[str, Machine] = MappingProxyType(machines)
        # asked on every transition and for every button shown: answered once per
        # (workflow, transition, state) by the machine, then looked up
        self._allowed = {(w.name, t.name, state): bool(machines[w.name].get_transitions(
                             trigger=t.name, source=state))
                         for w in registry.workflows.values()
                         for t in w.transitions.values() for state in w.states}

    def allowed(self, workflow: Workflow, transition: Transition, state: str) -> bool:
        """Whether `transition` may fire from `state`."""
        return self._allowed.get((workflow.name, transition.name, state), False)

    def target(self, workflow: Workflow, transition: Transition, state: str) -> str:
        machine = self._machines[workflow.name]
        return machine.get_transitions(trigger=transition.name, source=state)[0].dest
