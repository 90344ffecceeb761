"""sdtui plugins: `builtin` holds the plugins that ship with sdtui."""
