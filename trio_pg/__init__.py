"""trio_pg: a Trio-native PostgreSQL client."""
