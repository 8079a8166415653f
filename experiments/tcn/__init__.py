"""Section 6: TCNs on Sequential / Permuted MNIST (Tables 5-6)."""
