"""The paper's experiments: one ``get_config(smoke=False)`` file per table row, grouped by part."""
