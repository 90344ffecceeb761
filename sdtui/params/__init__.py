"""The one parameter schema, its validation and resolution, and the infotext codec."""
