"""smoltbot package."""
