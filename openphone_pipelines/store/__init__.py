"""The app database: schema, migrations and every SQL statement the product runs (nowhere else)."""
