"""trigger.compress stage."""
