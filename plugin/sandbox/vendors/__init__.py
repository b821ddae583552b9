"""One module per simulated vendor, named by the connector descriptors' `sandbox` field."""
