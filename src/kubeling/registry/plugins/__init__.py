"""Admission plugins beyond the generic ones in ``registry.admission``, one module each."""
