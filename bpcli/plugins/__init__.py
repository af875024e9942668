"""The plugin system: hook specifications, loading, and the registries of parts."""
