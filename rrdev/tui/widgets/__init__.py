"""The TUI's widgets and screens: traffic table, filter bar, status line, request
detail, help."""
