"""The scheduler: an API client that binds pending pods to nodes (see ``scheduler.scheduler``).

``build(ctx)`` is the controller manager's entry point; ``Scheduler`` can also be run on
its own over any ``Client`` and ``SharedInformerFactory``.
"""

from kubeling.scheduler.scheduler import COMPONENT, SCHEDULER_NAME, Scheduler, build

__all__ = ["COMPONENT", "SCHEDULER_NAME", "Scheduler", "build"]
