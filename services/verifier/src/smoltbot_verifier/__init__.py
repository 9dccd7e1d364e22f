"""smoltbot verifier: ``trace.v1`` -> ``verdict.v1`` (AAP verification, AIP checkpoint) and
nudges for violations (``nudges.py``)."""
