"""OpenPhone as the code relies on it: API client, payload models, webhook parsing and signatures, probe markers."""
