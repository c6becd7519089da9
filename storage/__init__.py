"""SQL store, artifact store and model registry. Imports no ML or orchestration code."""
