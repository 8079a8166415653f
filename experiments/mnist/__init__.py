"""Section 4: the MNIST / Fashion-MNIST CNN and FFN (Tables 1-3)."""
