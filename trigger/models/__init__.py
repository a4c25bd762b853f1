"""trigger.models stage."""
