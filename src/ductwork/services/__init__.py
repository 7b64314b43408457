"""Operations shared by the CLI and the REST API, over the store; no user code is imported."""
