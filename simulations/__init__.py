"""Fleet-scale simulations driving the real sans-IO protocol core."""
