"""The HTTP API: app factory, dependencies, schemas and one router per resource."""
