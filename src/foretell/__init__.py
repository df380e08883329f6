"""foretell: self-hosted model serving."""
