"""One router per resource: generate, edit, interpolate, axes (+ generators), health."""
