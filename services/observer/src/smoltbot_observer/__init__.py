"""smoltbot observer: ``exchange.v1`` -> ``trace.v1`` (provider parsing, decision analysis)."""
