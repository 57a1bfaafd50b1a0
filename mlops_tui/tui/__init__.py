"""The Textual dashboard. Store and Docker work happens only in workers."""
