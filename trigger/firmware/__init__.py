"""trigger.firmware stage."""
