"""Square and hole targeting: detection, features and ranking."""
