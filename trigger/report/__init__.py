"""trigger.report stage."""
