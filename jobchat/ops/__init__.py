"""Operations: health, readiness, metrics, request ids and logging."""
