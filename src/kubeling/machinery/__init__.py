"""The bottom layer: what every other layer shares about Kubernetes objects, with no I/O.

Objects stay JSON-shaped dicts (``types.Obj``) rather than typed models, so a request body,
a stored value and a watch event are one thing and cost no conversion between layers. The
modules here read and build those dicts with upstream's exact field names and texts:
``errors`` (the ``Status`` error tree), ``field`` (field errors), ``objects`` (accessors,
copying, conditions, pod readiness), ``resources`` (the served kinds), ``quantity``,
``selectors``, ``patch`` (JSON, merge and strategic merge), ``managedfields`` (server-side
apply), ``schema``/``decode``/``openapi`` (upstream's definitions) and ``protobuf``.
Nothing here logs: problems are raised to the layer that decides what to do about them.
"""
