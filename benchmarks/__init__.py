"""trio_pg benchmarks, run side by side with asyncpg and psycopg (see README)."""
