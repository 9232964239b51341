"""Sources as configuration: specs, landing, the bronze gate, the source DAGs and `moulin source`."""
