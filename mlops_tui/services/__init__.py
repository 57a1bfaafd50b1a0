"""Use cases shared by the CLI and the TUI. They return core objects, never rows."""
