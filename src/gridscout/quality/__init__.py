"""High-magnification assessment: motion, CTF, ice, crystalline ice, particles, one `assess()`."""
