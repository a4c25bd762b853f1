"""trigger.data stage."""
