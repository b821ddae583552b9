"""Built-in sandbox: simulated upstream APIs speaking the real dialects, plus seeded scenarios."""
