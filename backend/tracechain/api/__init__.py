"""HTTP: the app factory, dependencies, problem+json errors and one router per resource."""
